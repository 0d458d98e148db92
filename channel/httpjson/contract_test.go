package httpjson_test

import (
	"testing"

	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/channel/channeltest"
	"github.com/recon-dev/recon/channel/httpjson"
)

func TestContract(t *testing.T) {
	channeltest.Run(t, channeltest.Harness{
		Signed: true, Refunds: true,
		New: func(t testing.TB, env channeltest.Env) channel.Lookup {
			c, err := httpjson.New(httpjson.Config{Name: "hj", BaseURL: env.BaseURL, Secret: env.Secret, Timeout: env.Timeout})
			if err != nil {
				t.Fatal(err)
			}
			return c
		},
	})
}
