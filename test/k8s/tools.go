//go:build tools

// Package tools pins the Kubernetes commands the tests run for real: kube-apiserver and
// kubectl for the operator tests, and kubelet, kube-scheduler, kube-controller-manager and
// kube-proxy for the one-node cluster the chart runs on; test/k8s/build-tools.ts builds them
// from this module.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
