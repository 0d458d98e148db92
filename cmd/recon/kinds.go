package main

import (
	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/channel/httpjson"
	"github.com/recon-dev/recon/channel/simulator"
)

func init() {
	channelBuilders["simulator"] = func(cc ChannelConfig) (channel.Lookup, error) {
		return simulator.New(simulatorConfig(cc)), nil
	}
	channelBuilders["httpjson"] = func(cc ChannelConfig) (channel.Lookup, error) {
		var statuses map[string]recon.ChannelStatus
		if len(cc.StatusMap) > 0 {
			statuses = map[string]recon.ChannelStatus{}
			for k, v := range cc.StatusMap {
				statuses[k] = recon.ChannelStatus(v)
			}
		}
		return httpjson.New(httpjson.Config{Name: cc.Name, BaseURL: cc.BaseURL, Secret: cc.Secret, Timeout: cc.Timeout.D(),
			LookupPath: cc.LookupPath, OrderParam: cc.OrderParam, SuccessCode: cc.SuccessCode,
			NotFoundCode: cc.NotFoundCode, StatusMap: statuses, StatementPath: cc.StatementPath,
			RefundLookupPath: cc.RefundLookupPath})
	}
}

func simulatorConfig(cc ChannelConfig) simulator.Config {
	s := cc.Simulator
	return simulator.Config{
		Seed: s.Seed, Latency: s.Latency.D(), Secret: cc.Secret,
		PaidRate: s.PaidRate, FailedRate: s.FailedRate, ClosedRate: s.ClosedRate, NotFoundRate: s.NotFoundRate,
		LateRate: s.LateRate, LateAfter: s.LateAfter, AmountTamperRate: s.AmountTamperRate,
		CurrencyTamperRate: s.CurrencyTamperRate, BadSignatureRate: s.BadSignatureRate,
		RefundAbnormalRate: s.RefundAbnormalRate,
		TransientRate:      s.TransientRate, RateLimitRate: s.RateLimitRate, RetryAfter: s.RetryAfter.D(),
		FeeRate: cc.FeeRate,
	}
}
