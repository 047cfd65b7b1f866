package main

import (
	"strings"
	"testing"
)

func TestBuildVersion(t *testing.T) {
	if got := buildVersion("v1.2.3"); got != "v1.2.3" {
		t.Errorf("stamped: buildVersion = %q, want v1.2.3", got)
	}
	// A test binary records no module version or commit: the fallback names it dev.
	if got := buildVersion(""); !strings.HasPrefix(got, "dev") {
		t.Errorf("unstamped: buildVersion = %q, want dev...", got)
	}
}
