//go:build tools

// Package tools pins helm-unittest, which the chart tests run; test/chart/tools.ts builds it
// from this module (it needs helm-unittest's replace directive, so `go install …@version`
// cannot build it).
package tools

import (
	_ "github.com/helm-unittest/helm-unittest/cmd/helm-unittest"
)
