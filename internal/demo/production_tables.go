package demo

// The production tables, in the order GenerateProduction emits (and Load creates) them.
var (
	TableWorkcenterStatus = Table{
		Name: "part_v_workcenter_status_e",
		Columns: []Column{
			{Name: "pcn", Kind: KindInt},
			{Name: "workcenter_status_key", Kind: KindInt},
			{Name: "description", Kind: KindVarchar, Size: 50},
			{Name: "production_status", Kind: KindTinyInt},
			{Name: "idle_status", Kind: KindTinyInt},
			{Name: "downtime_status", Kind: KindTinyInt},
			{Name: "maintenance_status", Kind: KindTinyInt},
			{Name: "planned_production_time", Kind: KindTinyInt},
		},
		PrimaryKey: []string{"pcn", "workcenter_status_key"},
		PerPCN:     true,
	}
	TableWorkcenter = Table{
		Name: "part_v_workcenter_e",
		Columns: []Column{
			{Name: "pcn", Kind: KindInt},
			{Name: "workcenter_key", Kind: KindInt},
			{Name: "workcenter_code", Kind: KindVarchar, Size: 50},
			{Name: "name", Kind: KindVarchar, Size: 100},
		},
		PrimaryKey: []string{"pcn", "workcenter_key"},
		Unique:     []string{"pcn", "workcenter_code"},
		PerPCN:     true,
	}
	TablePart = Table{
		Name: "part_v_part_e",
		Columns: []Column{
			{Name: "pcn", Kind: KindInt},
			{Name: "part_key", Kind: KindInt},
			{Name: "part_no", Kind: KindVarchar, Size: 100},
			{Name: "revision", Kind: KindVarchar, Size: 8},
			{Name: "name", Kind: KindVarchar, Size: 100},
		},
		PrimaryKey: []string{"pcn", "part_key"},
		PerPCN:     true,
	}
	// TableWorkcenterLog is clustered by (PCN, work center, log_date): the reliability
	// reports read each work center's log in time order, a range scan of the key.
	TableWorkcenterLog = Table{
		Name: "part_v_workcenter_log_e",
		Columns: []Column{
			{Name: "plexus_customer_no", Kind: KindInt},
			{Name: "log_key", Kind: KindBigInt},
			{Name: "workcenter_key", Kind: KindInt},
			{Name: "log_date", Kind: KindDateTime},
			{Name: "log_hours", Kind: KindHours},
			{Name: "workcenter_status_key", Kind: KindInt},
			{Name: "workcenter_event_key", Kind: KindInt},
			{Name: "part_key", Kind: KindInt},
			{Name: "part_operation_key", Kind: KindInt},
			{Name: "shift_key", Kind: KindInt},
			{Name: "report_date", Kind: KindDate},
		},
		PrimaryKey: []string{"plexus_customer_no", "workcenter_key", "log_date"},
		Unique:     []string{"plexus_customer_no", "log_key"},
		Nullable:   []string{"workcenter_event_key", "part_key", "part_operation_key"},
		PerPCN:     true,
		PCNColumn:  "plexus_customer_no",
		Clustered:  true,
	}
	// TableShiftReport holds the rows of Plex's Daily_Shift_Report_Get data source
	// (one per work center and shift); the key serves daily-production's plant-day.
	TableShiftReport = Table{
		Name: "daily_shift_report",
		Columns: []Column{
			{Name: "pcn", Kind: KindInt},
			{Name: "report_date", Kind: KindDate},
			{Name: "shift_key", Kind: KindInt},
			{Name: "workcenter_key", Kind: KindInt},
			{Name: "workcenter_code", Kind: KindVarchar, Size: 50},
			{Name: "part_key", Kind: KindInt},
			{Name: "part_no", Kind: KindVarchar, Size: 100},
			{Name: "part_revision", Kind: KindVarchar, Size: 8},
			{Name: "part_name", Kind: KindVarchar, Size: 100},
			{Name: "operation_no", Kind: KindInt},
			{Name: "operation_code", Kind: KindVarchar, Size: 50},
			{Name: "parts_produced", Kind: KindInt},
			{Name: "parts_scrapped", Kind: KindInt},
			{Name: "earned_hours", Kind: KindHours},
			{Name: "actual_hours", Kind: KindHours},
			{Name: "quantity_produced", Kind: KindInt},
			{Name: "labor_rate", Kind: KindMoney},
		},
		PrimaryKey: []string{"pcn", "report_date", "workcenter_key", "shift_key"},
		PerPCN:     true,
		Clustered:  true,
	}
)

// ProductionTables returns the production tables in the order GenerateProduction
// emits them.
func ProductionTables() []Table {
	return []Table{TableWorkcenterStatus, TableWorkcenter, TablePart, TableWorkcenterLog, TableShiftReport}
}

// nullKey is a key column's value: nil (NULL) for 0.
func nullKey(k int) any {
	if k == 0 {
		return nil
	}
	return int64(k)
}

// GenerateProduction streams every row of the production tables: for each plant in
// Options.Plants order its statuses, work centers, parts, work-center log (work
// centers by key, each in time order) and daily shift report rows, each table's rows
// together. Values follow the columns' Kinds (Hours for KindHours, nil for NULL); the
// slice is reused after fn returns. With LogDays -1 it emits nothing. An error from fn
// stops generation and is returned as is.
func GenerateProduction(opts Options, fn func(Table, []any) error) error {
	o, err := opts.normalize()
	if err != nil {
		return err
	}
	if o.logDays() == 0 {
		return nil
	}
	row := make([]any, 0, 20)
	emit := func(t Table, vals ...any) error {
		row = append(row[:0], vals...)
		return fn(t, row)
	}
	for _, pcn := range o.Plants {
		p := newPlant(o, pcn)
		pc := int64(pcn)
		for _, s := range WorkCenterStatuses(pcn) {
			if err := emit(TableWorkcenterStatus, pc, int64(s.Key), s.Description, boolInt(s.Production), boolInt(s.Idle),
				boolInt(s.Downtime), boolInt(s.Maintenance), boolInt(s.PlannedProductionTime)); err != nil {
				return err
			}
		}
		for _, wc := range p.workcenters {
			if err := emit(TableWorkcenter, pc, int64(wc.Key), wc.Code, wc.Name); err != nil {
				return err
			}
		}
		for _, pt := range p.parts {
			if err := emit(TablePart, pc, int64(pt.Key), pt.No, pt.Revision, pt.Name); err != nil {
				return err
			}
		}
		g := newShiftGen(o, p)
		var reports []ShiftReport
		key := int64(0)
		for i := range p.workcenters {
			g.workcenterLog(&p.workcenters[i], func(rows []LogEntry, rep *ShiftReport) bool {
				for _, e := range rows {
					key++
					err = emit(TableWorkcenterLog, pc, key, int64(e.WorkcenterKey), e.Start.Format(dateTimeLayout), e.Hours,
						int64(e.StatusKey), nullKey(e.EventKey), nullKey(e.PartKey), nullKey(e.PartOperationKey),
						int64(e.ShiftKey), e.ReportDate.Format(dateLayout))
					if err != nil {
						return false
					}
				}
				if rep != nil {
					reports = append(reports, *rep)
				}
				return true
			})
			if err != nil {
				return err
			}
		}
		for _, r := range reports {
			if err := emit(TableShiftReport, pc, r.ReportDate.Format(dateLayout), int64(r.ShiftKey), int64(r.WorkcenterKey),
				r.WorkcenterCode, int64(r.PartKey), r.PartNo, r.PartRevision, r.PartName, int64(r.OperationNo), r.OperationCode,
				r.PartsProduced, r.PartsScrapped, r.EarnedHours, r.ActualHours, r.QuantityProduced, r.LaborRate); err != nil {
				return err
			}
		}
	}
	return nil
}
