package jobs

import (
	"fmt"

	"rpt/etl"
	"rpt/reportdefs"
)

// CheckNeeds checks the ETLs a report's needs: names against the shipped ETL
// catalogue, the ETLs an agent queues for a stale report (agent/needs.go): a name none
// of them has is refused with the file:line of its needs[N].etl.
func CheckNeeds(def *reportdefs.Definition) error {
	if len(def.Needs) == 0 {
		return nil
	}
	cat, err := etl.LoadCatalog()
	if err != nil {
		return fmt.Errorf("read the shipped etl definitions: %w", err)
	}
	var names []string
	for _, d := range cat.List() {
		names = append(names, d.Name)
	}
	return def.CheckNeeds(names)
}
