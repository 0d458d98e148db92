package jobs_test

import (
	"bytes"
	"html"
	"regexp"
	"strings"
	"testing"
)

var (
	invisible = regexp.MustCompile(`(?is)<(style|script|title)[^>]*>.*?</(style|script|title)>`)
	tag       = regexp.MustCompile(`(?s)<[^>]*>`)
	spaces    = regexp.MustCompile(`\s+`)
	leftover  = regexp.MustCompile(`&#?\w+;|\b(minus|times|middot);`)
)

// visibleText is the text a reader of page sees: no markup, no style or
// script, entities decoded, white space collapsed; one line per block
// element.
func visibleText(page string) []string {
	page = invisible.ReplaceAllString(page, "")
	page = regexp.MustCompile(`(?i)</?(p|div|h1|h2|h3|tr|li|table|section|header|br)\b[^>]*>`).ReplaceAllString(page, "\n")
	var lines []string
	for _, l := range strings.Split(tag.ReplaceAllString(page, ""), "\n") {
		if l = strings.TrimSpace(spaces.ReplaceAllString(html.UnescapeString(l), " ")); l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

// The page's header says, in words a reader can follow, what the totals
// are; the golden file alone froze a garbled version of it in once.
func TestReportHTMLHeaderReadsRight(t *testing.T) {
	var b bytes.Buffer
	if err := fixedReport().WriteHTML(&b); err != nil {
		t.Fatal(err)
	}
	var header string
	for _, l := range visibleText(b.String()) {
		if m := leftover.FindString(l); m != "" {
			t.Errorf("visible text shows markup %q: %q", m, l)
		}
		if strings.HasPrefix(l, "Generated ") {
			header = l
		}
	}
	want := "Generated 2026-11-24T08:00:00Z · from=2026-11-20 to=2026-11-24 · amounts in major units of each currency; " +
		"in dispute: the difference between what the channel holds as paid and what we hold as paid " +
		"(for an amount mismatch: |channel − local|)."
	if header != want {
		t.Fatalf("header reads\n%q\nwant\n%q", header, want)
	}
}
