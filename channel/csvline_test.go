package channel

import (
	"errors"
	"fmt"
	"testing"
)

func TestSplitCSVLine(t *testing.T) {
	cases := []struct {
		in   string
		want string
		err  error
	}{
		{"a,b,,c", `["a" "b" "" "c"]`, nil},
		{"", `[""]`, nil},
		{`"a, b",c`, `["a, b" "c"]`, nil},
		{`"say ""hi""",x`, `["say \"hi\"" "x"]`, nil},
		{"\"id\"\t,y", `["id\t" "y"]`, nil},
		{`{"k":"v"},z`, `["{\"k\":\"v\"}" "z"]`, nil},
		{"`a,`b", "[\"`a\" \"`b\"]", nil},
		{`"open,x`, "", ErrCSVQuote},
	}
	for _, c := range cases {
		got, err := SplitCSVLine(nil, c.in)
		if !errors.Is(err, c.err) || (err == nil && fmt.Sprintf("%q", got) != c.want) {
			t.Errorf("SplitCSVLine(%q) = %q, %v; want %s, %v", c.in, got, err, c.want, c.err)
		}
	}
	if QuoteCSV(`a,"b"`) != `"a,""b"""` || QuoteCSV("plain") != "plain" {
		t.Error("QuoteCSV")
	}
}

func TestParseDecimal(t *testing.T) {
	cases := []struct {
		in    string
		scale int
		want  int64
		ok    bool
	}{
		{"88.88", 2, 8888, true}, {"-0.27000", 2, -27, true}, {"-0.27000", 5, -27000, true},
		{"100", 2, 10000, true}, {"0.5", 2, 50, true}, {"+1.00", 2, 100, true}, {"0.00006", 5, 6, true},
		{"0.001", 2, 0, false}, {"1e3", 2, 0, false}, {"", 2, 0, false}, {"-", 2, 0, false}, {"1.", 2, 0, false},
		{".5", 2, 0, false}, {"1,000.00", 2, 0, false}, {" 1", 2, 0, false}, {"1234567890123456789", 0, 0, false},
	}
	for _, c := range cases {
		got, err := ParseDecimal(c.in, c.scale)
		if (err == nil) != c.ok || got != c.want || (err != nil && !errors.Is(err, ErrDecimal)) {
			t.Errorf("ParseDecimal(%q, %d) = %d, %v", c.in, c.scale, got, err)
		}
	}
	for _, c := range []struct {
		n     int64
		scale int
		want  string
	}{{-27, 2, "-0.27"}, {8888, 2, "88.88"}, {6, 5, "0.00006"}, {0, 2, "0.00"}, {5, 0, "5"}} {
		if got := FormatDecimal(c.n, c.scale); got != c.want {
			t.Errorf("FormatDecimal(%d, %d) = %q, want %q", c.n, c.scale, got, c.want)
		}
	}
}
