package simulator

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sync"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/channel/httpjson"
)

// Keys are the credentials of both sides of every provider the simulator
// server speaks. The simulator signs its answers with the provider's private
// keys and checks recon's requests with the merchant's public keys; recon is
// configured with the other halves (see KeyFiles).
type Keys struct {
	// AlipayAppID is the app_id requests must carry.
	AlipayAppID string
	// AlipayKey signs the gateway's responses (recon's public_key_file is its
	// public half).
	AlipayKey *rsa.PrivateKey
	// AlipayAppKey is the merchant app's key pair: recon signs requests with
	// it (private_key_file), the gateway verifies them with its public half.
	AlipayAppKey *rsa.PrivateKey

	// WechatMchID is the mchid requests must carry.
	WechatMchID string
	// WechatPlatformKey signs the platform's responses, announced in
	// Wechatpay-Serial as WechatPlatformKeyID (recon's public_key_id and
	// public_key_file).
	WechatPlatformKey   *rsa.PrivateKey
	WechatPlatformKeyID string
	// WechatMerchantKey is the merchant's API key pair: recon signs the
	// Authorization header with it (private_key_file), announced as
	// WechatMerchantSerial (cert_serial).
	WechatMerchantKey    *rsa.PrivateKey
	WechatMerchantSerial string

	// StripeAPIKey is the secret key requests must carry as a bearer token.
	StripeAPIKey string
}

// Test identities used by GenerateKeys.
const (
	TestAlipayAppID          = "2021000000000001"
	TestWechatMchID          = "1900000001"
	TestWechatPlatformKeyID  = "PUB_KEY_ID_0119000000012026000000000000000001"
	TestWechatMerchantSerial = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
	TestStripeAPIKey         = "sk_test_recon_simulator"
)

// GenerateKeys returns fresh 2048-bit RSA keys with the test identities.
func GenerateKeys() (Keys, error) {
	k := testIdentities()
	for _, sl := range k.slots(KeyFiles{}) {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return Keys{}, fmt.Errorf("simulator: generate key: %w", err)
		}
		*sl.key = key
	}
	return k, nil
}

// testIdentities is Keys with the test identities and no keys yet.
func testIdentities() Keys {
	return Keys{
		AlipayAppID: TestAlipayAppID, WechatMchID: TestWechatMchID,
		WechatPlatformKeyID: TestWechatPlatformKeyID, WechatMerchantSerial: TestWechatMerchantSerial,
		StripeAPIKey: TestStripeAPIKey,
	}
}

// keySlot is one key pair of Keys and the files of its two halves.
type keySlot struct {
	key       **rsa.PrivateKey
	priv, pub string
}

// slots lists k's key pairs with their files in f.
func (k *Keys) slots(f KeyFiles) []keySlot {
	return []keySlot{
		{&k.AlipayKey, f.AlipayPrivate, f.AlipayPublic},
		{&k.AlipayAppKey, f.AlipayAppPrivate, f.AlipayAppPublic},
		{&k.WechatPlatformKey, f.WechatPlatformPrivate, f.WechatPlatformPublic},
		{&k.WechatMerchantKey, f.WechatMerchantPrivate, f.WechatMerchantPublic},
	}
}

var (
	testKeysOnce sync.Once
	testKeys     Keys
	testKeysErr  error
)

// TestKeys returns keys generated once per process, for tests.
func TestKeys() (Keys, error) {
	testKeysOnce.Do(func() { testKeys, testKeysErr = GenerateKeys() })
	return testKeys, testKeysErr
}

// KeyFiles are the PEM files of Keys in a directory: the simulator's halves
// and the halves recon's config points at.
type KeyFiles struct {
	Dir string
	// For the simulator.
	AlipayPrivate, AlipayAppPublic, WechatPlatformPrivate, WechatMerchantPublic string
	// For recon: alipay private_key_file / public_key_file, wechatpay
	// private_key_file / public_key_file.
	AlipayAppPrivate, AlipayPublic, WechatMerchantPrivate, WechatPlatformPublic string
}

// KeyFilesIn names the key files in dir.
func KeyFilesIn(dir string) KeyFiles {
	p := func(name string) string { return filepath.Join(dir, name) }
	return KeyFiles{
		Dir:                   dir,
		AlipayPrivate:         p("alipay_private.pem"),
		AlipayAppPublic:       p("alipay_app_public.pem"),
		WechatPlatformPrivate: p("wechatpay_platform_private.pem"),
		WechatMerchantPublic:  p("wechatpay_merchant_public.pem"),
		AlipayAppPrivate:      p("alipay_app_private.pem"),
		AlipayPublic:          p("alipay_public.pem"),
		WechatMerchantPrivate: p("wechatpay_merchant_private.pem"),
		WechatPlatformPublic:  p("wechatpay_platform_public.pem"),
	}
}

// WriteFiles writes k's keys as PEM files (PKCS#8 private keys, PKIX public
// keys) into dir, private ones readable by the owner only.
func (k Keys) WriteFiles(dir string) (KeyFiles, error) {
	f := KeyFilesIn(dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return f, fmt.Errorf("simulator: write keys: %w", err)
	}
	for _, sl := range k.slots(f) {
		priv, err := x509.MarshalPKCS8PrivateKey(*sl.key)
		if err != nil {
			return f, fmt.Errorf("simulator: encode %s: %w", sl.priv, err)
		}
		pub, err := x509.MarshalPKIXPublicKey(&(*sl.key).PublicKey)
		if err != nil {
			return f, fmt.Errorf("simulator: encode %s: %w", sl.pub, err)
		}
		if err := os.WriteFile(sl.priv, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: priv}), 0o600); err != nil {
			return f, fmt.Errorf("simulator: write keys: %w", err)
		}
		if err := os.WriteFile(sl.pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644); err != nil {
			return f, fmt.Errorf("simulator: write keys: %w", err)
		}
	}
	return f, nil
}

// LoadOrCreateKeys reads the simulator's keys from dir, or generates and
// writes them there when dir holds none, so that a staging simulator keeps
// its identity across restarts.
func LoadOrCreateKeys(dir string) (Keys, KeyFiles, error) {
	f := KeyFilesIn(dir)
	if _, err := os.Stat(f.AlipayPrivate); errors.Is(err, fs.ErrNotExist) {
		k, err := GenerateKeys()
		if err != nil {
			return Keys{}, f, err
		}
		f, err = k.WriteFiles(dir)
		return k, f, err
	}
	k := testIdentities()
	for _, sl := range k.slots(f) {
		key, err := readPrivateKey(sl.priv)
		if err != nil {
			return Keys{}, f, err
		}
		*sl.key = key
	}
	return k, f, nil
}

// readPrivateKey reads one of the key files WriteFiles wrote.
func readPrivateKey(path string) (*rsa.PrivateKey, error) {
	k, err := channel.ReadRSAPrivateKey(path)
	if err != nil {
		return nil, fmt.Errorf("simulator: read key: %w", err)
	}
	return k, nil
}

// TxnOrderSource is implemented by order sources that can also find an
// order by its channel transaction id (Stripe looks payment intents up by
// id, and recon stores that id as channel_txn_id).
type TxnOrderSource interface {
	OrderSource
	// OrderByTxnID returns the order whose channel_txn_id is txnID, or false
	// when there is none.
	OrderByTxnID(ctx context.Context, txnID string) (recon.Order, bool, error)
}

// Orders is an in-memory TxnOrderSource, safe for concurrent use.
type Orders struct {
	mu         sync.Mutex
	byNo       map[string]recon.Order
	byTxn      map[string]string
	refunds    map[string]recon.Refund // by refund number (AddRefund)
	byRefundID map[string]string       // refund numbers by channel refund id
}

var _ TxnOrderSource = (*Orders)(nil)

// NewOrders returns a source holding orders.
func NewOrders(orders ...recon.Order) *Orders {
	s := &Orders{byNo: map[string]recon.Order{}, byTxn: map[string]string{},
		refunds: map[string]recon.Refund{}, byRefundID: map[string]string{}}
	s.Add(orders...)
	return s
}

// Add adds or replaces orders.
func (s *Orders) Add(orders ...recon.Order) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range orders {
		s.byNo[o.OrderNo] = o
		if o.ChannelTxnID != "" {
			s.byTxn[o.ChannelTxnID] = o.OrderNo
		}
	}
}

// OrderByNo implements OrderSource.
func (s *Orders) OrderByNo(_ context.Context, orderNo string) (recon.Order, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.byNo[orderNo]
	return o, ok, nil
}

// OrderByTxnID implements TxnOrderSource.
func (s *Orders) OrderByTxnID(_ context.Context, txnID string) (recon.Order, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	no, ok := s.byTxn[txnID]
	if !ok {
		return recon.Order{}, false, nil
	}
	return s.byNo[no], true, nil
}

// mount adds one provider's wire format to the server's mux. Each provider
// file registers its own in init.
type mount func(s *Sim, mux *http.ServeMux, orders OrderSource, keys Keys)

var mounts = map[string]mount{}

// Server serves every wire format the simulator speaks on one handler: the
// httpjson protocol (GET /order/get_result) and each provider's paths
// (Alipay's gateway, WeChat Pay v3, Stripe), all answering from the same
// simulated channel, with the same fault injection, signed with keys. The
// day's statement (StatementLines) is served in each provider's format too:
// Alipay's bill download URL and GBK zip, WeChat Pay's trade bill with its
// SHA-1 and download, Stripe's balance transactions, and httpjson's CSV.
// Refund lookups are served in each format too (refund.go), about the
// refunds of orders when it is also a RefundSource.
func (s *Sim) Server(orders OrderSource, keys Keys) http.Handler {
	mux := http.NewServeMux()
	mux.Handle(httpjson.DefaultLookupPath, s.Handler(orders))
	mux.Handle(httpjson.DefaultStatementPath, s.Handler(orders))
	mux.Handle(httpjson.DefaultRefundLookupPath, s.Handler(orders))
	for _, m := range mounts {
		m(s, mux, orders, keys)
	}
	return mux
}
