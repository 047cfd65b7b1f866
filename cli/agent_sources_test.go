package cli

import (
	"slices"
	"testing"

	"rpt/internal/source"
)

// An agent serves only the sources this binary can open: an odbc source (not built
// yet) is left to agents that have the driver, rather than failing its jobs here; plexws
// is built in (internal/source/plexws registers itself).
func TestRunnableSources(t *testing.T) {
	t.Parallel()
	names, skipped := runnableSources(map[string]source.Config{
		"warehouse": {Driver: "mysql", DSN: "mysql://u@h/db"},
		"demo":      {DSN: "sqlite:demo.db"}, // driver from the DSN's scheme
		"plex":      {Driver: "plexws", URL: "https://plex.example/ws"},
		"legacy":    {Driver: "odbc", DSN: "DSN=x"},
		"azure":     {Driver: "sqlserver", DSN: "sqlserver://h"},
	})
	if want := []string{"azure", "demo", "plex", "warehouse"}; !slices.Equal(names, want) {
		t.Errorf("served %v, want %v", names, want)
	}
	if want := []string{"legacy"}; !slices.Equal(skipped, want) {
		t.Errorf("skipped %v, want %v", skipped, want)
	}
}
