package main

import (
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/channel/stripe"
)

func init() {
	channelBuilders["stripe"] = func(cc ChannelConfig) (channel.Lookup, error) {
		cfg := stripe.Config{Name: cc.Name, BaseURL: cc.BaseURL, APIKey: cc.APIKey, Timeout: cc.Timeout.D()}
		// Validate's messages start with the key they are about.
		if err := cfg.Validate(); err != nil {
			return nil, err
		}
		c, err := stripe.New(cfg)
		if err != nil {
			return nil, err
		}
		return c, nil
	}
}
