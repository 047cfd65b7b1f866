package queue

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// ErrDenied: the queue database refused the statement for lack of a grant (a
// submitter's account publishing a definition). The message says which role the
// command needs; like every missing grant it exits 5 (the database refuses rpt).
var ErrDenied = errors.New("permission denied")

// PublishedDefinition is one row of rpt_definitions: a definition snapshot that agents
// trust, keyed by the sha256 of its bytes. Publishing is an admin's act (the database
// grants keep submitters from writing the table), so a job whose snapshot hashes to a
// published row runs SQL an admin approved.
type PublishedDefinition struct {
	SHA256      string    `json:"sha256"`
	Report      string    `json:"report"`
	Definition  []byte    `json:"-"`
	PublishedBy string    `json:"published_by"`
	PublishedAt time.Time `json:"published_at"`
}

// DefinitionPublishParams is a definition to publish. The store computes the sha256
// from Definition itself: a caller cannot publish one hash for other bytes.
type DefinitionPublishParams struct {
	Report      string
	Definition  []byte
	PublishedBy string
}

// Definitions is the table of published definitions. Every Store implements it.
type Definitions interface {
	// DefinitionPublish records a definition; publishing the same bytes again changes
	// nothing and returns the first row with existing true.
	DefinitionPublish(ctx context.Context, p DefinitionPublishParams) (d PublishedDefinition, existing bool, err error)
	// DefinitionGet returns the published definition with this sha256 (hex, lower
	// case); ErrNotFound when none is.
	DefinitionGet(ctx context.Context, sha256 string) (PublishedDefinition, error)
	// DefinitionList lists published definitions by report, newest first within one.
	DefinitionList(ctx context.Context) ([]PublishedDefinition, error)
}

// DefinitionSHA256 is the hex sha256 of a definition snapshot, as jobs and
// rpt_definitions key it.
func DefinitionSHA256(def []byte) string {
	sum := sha256.Sum256(def)
	return hex.EncodeToString(sum[:])
}

// CheckPublish validates DefinitionPublish's arguments; both stores call it.
func CheckPublish(p DefinitionPublishParams) error {
	switch {
	case p.Report == "":
		return fmt.Errorf("%w: report: empty", ErrInvalid)
	case len(p.Report) > 255:
		return fmt.Errorf("%w: report: longer than 255 bytes", ErrInvalid)
	case len(p.Definition) == 0:
		return fmt.Errorf("%w: definition: empty", ErrInvalid)
	case len(p.PublishedBy) > 255:
		return fmt.Errorf("%w: published_by: longer than 255 bytes", ErrInvalid)
	}
	return nil
}
