//go:build tools

// Package tools pins metrics-server, the metrics pipeline of the tests' one-node cluster: it
// reads the kubelet's resource metrics and serves metrics.k8s.io, which the
// HorizontalPodAutoscalers of the chart read. test/k8s/build-tools.ts builds it from this module.
package tools

import (
	_ "sigs.k8s.io/metrics-server/cmd/metrics-server"
)
