package alipay_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sdk "github.com/smartwalle/alipay/v3"
	"github.com/smartwalle/nsign"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/channel/alipay"
)

// The SDK's signer and verifier, built exactly as its Client builds them.
func sdkSigner(key *rsa.PrivateKey) nsign.Signer {
	return nsign.New(nsign.WithMethod(nsign.NewRSAMethod(crypto.SHA256, key, nil)), nsign.WithEncoder(&sdk.Encoder{}))
}

func sdkVerifier(pub *rsa.PublicKey) nsign.Signer {
	return nsign.New(nsign.WithMethod(nsign.NewRSAMethod(crypto.SHA256, nil, pub)), nsign.WithEncoder(&sdk.Encoder{}))
}

// documentedSign is the placeholder sign of Alipay's documented examples.
const documentedSign = "ERITJKEIJKJHKKKKKKKHJEREEEEEEEEEEE"

// golden is one documented answer and what recon makes of it.
type golden struct {
	file, method, orderNo string
	want                  recon.LookupResult // MethodQuery, when wantErr is nil
	wantErr               *channel.Class     // the class of the error wanted
	mentions              string
}

func class(c channel.Class) *channel.Class { return &c }

var goldens = []golden{
	{file: "query_trade_closed.json", method: alipay.MethodQuery, orderNo: "6823789339978248",
		want: recon.LookupResult{Status: recon.ChannelClosed, Amount: 8888, Currency: "TWD",
			TxnID: "2013112011001004330000121536", PaidAt: utc("2014-11-27T07:45:57Z")}},
	{file: "query_paid.json", method: alipay.MethodQuery, orderNo: "6823789339978248",
		want: recon.LookupResult{Status: recon.ChannelPaid, Amount: 8888, Currency: "CNY",
			TxnID: "2013112011001004330000121536", PaidAt: utc("2014-11-27T07:45:57Z")}},
	{file: "query_not_exist.json", method: alipay.MethodQuery, orderNo: "6823789339978248",
		want: recon.LookupResult{Status: recon.ChannelNotFound}},
	{file: "query_error.json", method: alipay.MethodQuery, orderNo: "6823789339978248",
		wantErr: class(channel.ClassTransient), mentions: "isp.unknow-error"},
	{file: "close_success.json", method: alipay.MethodClose, orderNo: "YX_001"},
	{file: "close_error.json", method: alipay.MethodClose, orderNo: "YX_001",
		wantErr: class(channel.ClassTransient), mentions: "系统繁忙"},
	{file: "close_not_exist.json", method: alipay.MethodClose, orderNo: "YX_001",
		wantErr: class(channel.ClassPermanent), mentions: "ACQ.TRADE_NOT_EXIST"},
}

func readGolden(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "golden", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// check parses a verified node of g as Lookup or CloseOrder does and
// compares the outcome with g's.
func (g golden) check(t *testing.T, node []byte) {
	t.Helper()
	var res recon.LookupResult
	var err error
	if g.method == alipay.MethodQuery {
		res, err = alipay.ParseQuery(node, g.orderNo)
	} else {
		err = alipay.ParseClose(node, g.orderNo)
	}
	switch {
	case g.wantErr != nil:
		if err == nil || channel.ClassOf(err) != *g.wantErr || !strings.Contains(err.Error(), g.mentions) {
			t.Fatalf("%s: error %v, want a %s error mentioning %s", g.file, err, *g.wantErr, g.mentions)
		}
	case err != nil:
		t.Fatalf("%s: %v", g.file, err)
	case !sameResult(res, g.want):
		t.Fatalf("%s: %+v, want %+v", g.file, res, g.want)
	}
}

// goldenNode is a documented answer and its node's raw bytes.
type goldenNode struct {
	golden
	body, node []byte
}

// goldenNodes reads every documented answer and takes its node out.
func goldenNodes(t *testing.T) []goldenNode {
	t.Helper()
	var out []goldenNode
	for _, g := range goldens {
		body := readGolden(t, g.file)
		node, _, err := alipay.SplitResponse(body, g.method)
		if err != nil {
			t.Fatalf("%s: %v", g.file, err)
		}
		out = append(out, goldenNode{golden: g, body: body, node: node})
	}
	return out
}

// opens puts sig into the documented body and checks that the adapter
// verifies it with the gateway's test key and reads the expected outcome.
func (g goldenNode) opens(t *testing.T, sig string) {
	t.Helper()
	opened, err := alipay.Open(&keys(t).AlipayKey.PublicKey, withSign(t, g.body, sig), g.method)
	if err != nil {
		t.Fatalf("%s: Open: %v", g.file, err)
	}
	g.check(t, opened)
}

// withSign replaces the documented placeholder sign of body.
func withSign(t *testing.T, body []byte, sig string) []byte {
	t.Helper()
	if !bytes.Contains(body, []byte(documentedSign)) {
		t.Fatal("no documented sign to replace")
	}
	return bytes.Replace(body, []byte(documentedSign), []byte(sig), 1)
}

// TestGoldenParse reads the documented answers: the node is taken out as the
// exact bytes sent (indented as documented, not re-encoded) and parses into
// the expected result.
func TestGoldenParse(t *testing.T) {
	t.Parallel()
	for _, g := range goldens {
		body := readGolden(t, g.file)
		node, sig, err := alipay.SplitResponse(body, g.method)
		if err != nil {
			t.Fatalf("%s: %v", g.file, err)
		}
		if sig != documentedSign {
			t.Errorf("%s: sign %q", g.file, sig)
		}
		if !bytes.Contains(body, node) || !bytes.HasPrefix(node, []byte("{\n        \"code\"")) {
			t.Errorf("%s: node is not the raw bytes of the body: %.40q", g.file, node)
		}
		g.check(t, node)
		// The placeholder does not verify.
		if _, err := alipay.Open(&keys(t).AlipayKey.PublicKey, body, g.method); !errors.Is(err, channel.ErrBadSignature) {
			t.Errorf("%s: Open with the documented placeholder sign = %v, want a bad signature", g.file, err)
		}
	}
}

// TestGoldenSignedByUsVerifiedBySDK signs each documented node with the
// simulator's gateway key, as the simulator does, and checks that the SDK's
// verifier accepts it, and that a changed byte is refused by both.
func TestGoldenSignedByUsVerifiedBySDK(t *testing.T) {
	t.Parallel()
	k := keys(t)
	for _, g := range goldenNodes(t) {
		body, node := g.body, g.node
		sig, err := alipay.Sign(k.AlipayKey, node)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := base64.StdEncoding.DecodeString(sig)
		if err := sdkVerifier(&k.AlipayKey.PublicKey).VerifyBytes(node, raw); err != nil {
			t.Errorf("%s: the SDK refuses our signature: %v", g.file, err)
		}
		g.opens(t, sig)
		tampered := bytes.Replace(node, []byte(`"code": "`), []byte(`"code":  "`), 1)
		if sdkVerifier(&k.AlipayKey.PublicKey).VerifyBytes(tampered, raw) == nil {
			t.Errorf("%s: the SDK accepts a changed node", g.file)
		}
		if _, err := alipay.Open(&k.AlipayKey.PublicKey, bytes.Replace(withSign(t, body, sig), node, tampered, 1), g.method); !errors.Is(err, channel.ErrBadSignature) {
			t.Errorf("%s: Open accepts a changed node: %v", g.file, err)
		}
	}
}

// TestGoldenSignedBySDKVerifiedByUs signs each documented node with the SDK's
// signer and checks that the adapter's verifier accepts it.
func TestGoldenSignedBySDKVerifiedByUs(t *testing.T) {
	t.Parallel()
	k := keys(t)
	for _, g := range goldenNodes(t) {
		node := g.node
		raw, err := sdkSigner(k.AlipayKey).SignBytes(node)
		if err != nil {
			t.Fatal(err)
		}
		sig := base64.StdEncoding.EncodeToString(raw)
		if ours, _ := alipay.Sign(k.AlipayKey, node); ours != sig {
			t.Errorf("%s: our signature differs from the SDK's (PKCS #1 v1.5 is deterministic)", g.file)
		}
		g.opens(t, sig)
	}
}

// TestGoldenRequest checks the request of the documented example: the signed
// string is the documented one, the SDK's encoder and verifier agree with
// ours, and a request the SDK signs verifies with our verifier.
func TestGoldenRequest(t *testing.T) {
	t.Parallel()
	k := keys(t)
	want := readGolden(t, "query_request.sign_content")
	at := time.Date(2014, 7, 24, 3, 7, 50, 0, alipay.Beijing)
	v, err := alipay.Request("2014072300007148", k.AlipayAppKey, alipay.MethodQuery, "20150320010101001", at.In(time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if got := alipay.SignContent(v); !bytes.Equal(got, want) {
		t.Errorf("signed string\n%s\nwant\n%s", got, want)
	}
	var buf bytes.Buffer
	sdkContent, err := (&sdk.Encoder{}).EncodeValues(&buf, v, &nsign.SignOptions{Ignores: map[string]struct{}{"sign": {}}})
	if err != nil || !bytes.Equal(sdkContent, want) {
		t.Errorf("the SDK's encoder gives %s, %v", sdkContent, err)
	}
	raw, err := base64.StdEncoding.DecodeString(v.Get("sign"))
	if err != nil {
		t.Fatal(err)
	}
	if err := sdkVerifier(&k.AlipayAppKey.PublicKey).VerifyValues(v, raw, nsign.WithIgnore("sign")); err != nil {
		t.Errorf("the SDK refuses our request signature: %v", err)
	}

	// The other way round: a request the SDK signs.
	der, err := x509.MarshalPKCS8PrivateKey(k.AlipayAppKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := sdk.New("2014072300007148", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), true)
	if err != nil {
		t.Fatal(err)
	}
	sv, err := c.URLValues(sdk.TradeQuery{OutTradeNo: "20150320010101001"})
	if err != nil {
		t.Fatal(err)
	}
	if err := alipay.Verify(&k.AlipayAppKey.PublicKey, alipay.SignContent(sv), sv.Get("sign")); err != nil {
		t.Errorf("our verifier refuses the SDK's request signature: %v", err)
	}
	for _, p := range []string{"app_id", "method", "format", "charset", "sign_type", "version", "biz_content"} {
		if sv.Get(p) != v.Get(p) {
			t.Errorf("%s: SDK sends %q, we send %q", p, sv.Get(p), v.Get(p))
		}
	}
}

// TestSDKReadsOurAnswers points the SDK's client at a gateway that answers
// with a documented node signed by us: the SDK takes the node out of the
// body itself, verifies and decodes it.
func TestSDKReadsOurAnswers(t *testing.T) {
	t.Parallel()
	k := keys(t)
	body := readGolden(t, "query_paid.json")
	node, _, err := alipay.SplitResponse(body, alipay.MethodQuery)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := alipay.Sign(k.AlipayKey, node)
	if err != nil {
		t.Fatal(err)
	}
	signedBody := withSign(t, body, sig)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(signedBody) }))
	t.Cleanup(srv.Close)
	c := sdkClient(t, srv.URL+"/gateway.do", &k.AlipayKey.PublicKey)
	rsp, err := c.TradeQuery(context.Background(), sdk.TradeQuery{OutTradeNo: "6823789339978248"})
	if err != nil {
		t.Fatalf("SDK TradeQuery: %v", err)
	}
	if rsp.Code != sdk.CodeSuccess || rsp.TradeStatus != sdk.TradeStatusSuccess || rsp.TotalAmount != "88.88" {
		t.Errorf("SDK read %+v", rsp)
	}
	// A forged signature: the SDK refuses it too.
	forged, _ := alipay.Sign(k.AlipayAppKey, node)
	signedBody = withSign(t, body, forged)
	if _, err := c.TradeQuery(context.Background(), sdk.TradeQuery{OutTradeNo: "6823789339978248"}); err == nil {
		t.Error("SDK accepted a forged signature")
	}
}

// sdkClient is the SDK's client for the test app, pointed at gateway and
// verifying with pub.
func sdkClient(t *testing.T, gateway string, pub *rsa.PublicKey) *sdk.Client {
	t.Helper()
	k := keys(t)
	der, err := x509.MarshalPKCS8PrivateKey(k.AlipayAppKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := sdk.New(appID, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), true,
		sdk.WithProductionGateway(gateway))
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.LoadAliPayPublicKey(string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}))); err != nil {
		t.Fatal(err)
	}
	return c
}
