package simulator

import (
	"context"
	"net/http"

	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/channel/httpjson"
)

var _ channel.Notifier = (*Sim)(nil)

// VerifyNotification verifies a notification as an httpjson channel does
// (CONTRACT §11: the lookup answer's data object, X-Signature under the
// simulator's secret).
func (s *Sim) VerifyNotification(_ context.Context, body []byte, header http.Header) (channel.Notification, error) {
	return httpjson.DecodeNotification(s.decode, body, header.Get(httpjson.SignatureHeader))
}
