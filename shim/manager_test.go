package shim

import (
	"context"
	"slices"
	"testing"

	"github.com/containerd/typeurl/v2"
	"github.com/opencontainers/runtime-spec/specs-go/features"
)

// containerd 2.x's CRI reads a handler's features from the shim's -info:
// recursive read-only mounts need "rro", user namespaces need "user" and
// idmapped mounts. Without them critest skips 10 specs runc's shim passes.
func TestInfoFeatures(t *testing.T) {
	info, err := manager{}.Info(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := typeurl.UnmarshalAny(info.Features)
	if err != nil {
		t.Fatalf("features: %v", err)
	}
	f, ok := v.(*features.Features)
	if !ok {
		t.Fatalf("features are a %T", v)
	}
	if !slices.Contains(f.MountOptions, "rro") {
		t.Errorf("mount options lack rro: %v", f.MountOptions)
	}
	if f.Linux == nil || !slices.Contains(f.Linux.Namespaces, "user") ||
		f.Linux.MountExtensions == nil || f.Linux.MountExtensions.IDMap == nil || !*f.Linux.MountExtensions.IDMap.Enabled {
		t.Errorf("no user namespaces with idmapped mounts: %+v", f.Linux)
	}
}
