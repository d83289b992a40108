//go:build tools

// Package tools pins the Kubernetes commands the operator tests run for real
// (kube-apiserver, kubectl); test/k8s/build-tools.ts builds them from this module.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
