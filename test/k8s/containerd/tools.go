//go:build tools

// Package tools pins the container runtime of the tests' one-node cluster: containerd 2 (its runc shim, and
// its ctr, to import images built here) and crictl (to clear pods when the cluster stops).
// test/k8s/build-tools.ts builds them from this module; runc and the CNI plugins come from
// Debian.
package tools

import (
	_ "github.com/containerd/containerd/v2/cmd/containerd"
	_ "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2"
	_ "github.com/containerd/containerd/v2/cmd/ctr"
	_ "sigs.k8s.io/cri-tools/cmd/crictl"
)
