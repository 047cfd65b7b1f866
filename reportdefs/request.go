package reportdefs

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"

	"rpt/internal/didyoumean"
	"rpt/internal/queue"
	"rpt/internal/source"
	"rpt/internal/yamlstrict"
)

// A definition asks its source for rows in one of three forms: sql: (or dialects:),
// procedure: (a stored-procedure call on a mysql or sqlserver source) or datasource:
// (a Plex web-service data source on a plexws source). The latter two are features an
// agent of v0.1.0 cannot run: a job using one requires the capability label (see
// Features and queue.FeatureLabel), so an older agent never claims it.

// Definition features beyond what every agent since v0.1.0 runs.
const (
	FeatureProcedure  = "procedure"
	FeatureDataSource = "datasource"
	// FeatureLookups is a datasource: whose shaping reads lookups: tables from another
	// source; an agent that parses datasource: without them would refuse the key.
	FeatureLookups = "lookups"
	// FeatureLoadedBy is a definition with loaded_by:, a key an older agent would refuse.
	FeatureLoadedBy = "loaded-by"
)

var procNameRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]{0,127}(\.[A-Za-z_][A-Za-z0-9_$]{0,127})?$`)
})

// requestNodes are the nodes of the request forms the checks after the walk point at.
type requestNodes struct {
	procArgs  *yaml.Node // procedure.args
	dsInputs  *yaml.Node // datasource.inputs
	dsPCN     *yaml.Node // datasource.pcn
	dsPeriods *yaml.Node // datasource.periods
	dsSQL     *yaml.Node // datasource.sql
	dsLookups *yaml.Node // datasource.lookups
	lookupSQL []*yaml.Node
	lookupSrc []*yaml.Node
}

// parseProcedure reads procedure: {name, args}.
func parseProcedure(doc *yamlstrict.Doc, n *yaml.Node, path string, rn *requestNodes) *source.Procedure {
	proc := &source.Procedure{}
	seen := doc.Mapping(n, path,
		yamlstrict.Field{Key: "name", Fn: func(v *yaml.Node, fp string) {
			if s, ok := doc.Str(v, fp); ok {
				if !procNameRE().MatchString(s) {
					doc.At(v, fp, "bad procedure name %q (want name or schema.name: letters, digits and '_')", s)
				}
				proc.Name = s
			}
		}},
		yamlstrict.Field{Key: "args", Fn: func(v *yaml.Node, fp string) {
			rn.procArgs = v
			proc.Args, _ = doc.StrList(v, fp)
		}},
	)
	if n.Kind == yaml.MappingNode && seen["name"] == nil {
		doc.At(n, path+".name", "missing (the procedure to call)")
	}
	return proc
}

// parseDataSource reads datasource: {key, name, pcn, periods, inputs, columns, sql}.
//
//	inputs:  {"@Start_Date": {param: report_date, format: "01/02/2006"}, "@PCNs": pcn}
//	columns: [{Report_Date: date}, {Part_No: string}, Workcenter_Code]   # ordered as Plex returns them
func parseDataSource(doc *yamlstrict.Doc, n *yaml.Node, path string, rn *requestNodes) *source.DataSource {
	ds := &source.DataSource{}
	seen := doc.Mapping(n, path,
		yamlstrict.Field{Key: "key", Fn: func(v *yaml.Node, fp string) {
			if k, ok := doc.Int(v, fp); ok {
				if k < 1 {
					doc.At(v, fp, "must be the data source's key (a positive number), got %d", k)
				}
				ds.Key = k
			}
		}},
		yamlstrict.Field{Key: "name", Fn: func(v *yaml.Node, fp string) { ds.Name, _ = doc.Str(v, fp) }},
		yamlstrict.Field{Key: "pcn", Fn: func(v *yaml.Node, fp string) { rn.dsPCN = v; ds.PCN, _ = doc.Str(v, fp) }},
		yamlstrict.Field{Key: "periods", Fn: func(v *yaml.Node, fp string) {
			rn.dsPeriods = v
			list, ok := doc.StrList(v, fp)
			if ok && len(list) != 2 {
				doc.At(v, fp, "want [first_period, last_period]: two parameters of type period")
				return
			}
			if ok {
				ds.Periods = [2]string{list[0], list[1]}
			}
		}},
		yamlstrict.Field{Key: "inputs", Fn: func(v *yaml.Node, fp string) {
			rn.dsInputs = v
			ds.Inputs = map[string]string{}
			doc.Pairs(v, fp, "a mapping (Plex input: parameter)", "input", func(k, iv *yaml.Node, sub string) {
				if strings.TrimSpace(k.Value) == "" {
					doc.At(k, sub, "empty input name")
				}
				if iv.Kind == yaml.ScalarNode {
					ds.Inputs[k.Value], _ = doc.Str(iv, sub)
					return
				}
				doc.Mapping(iv, sub,
					yamlstrict.Field{Key: "param", Fn: func(pv *yaml.Node, pp string) { ds.Inputs[k.Value], _ = doc.Str(pv, pp) }},
					yamlstrict.Field{Key: "format", Fn: func(fv *yaml.Node, fpp string) {
						f, ok := doc.Str(fv, fpp)
						if !ok {
							return
						}
						if !strings.Contains(f, "2006") {
							doc.At(fv, fpp, "bad date format %q (a Go layout such as 01/02/2006 for MM/DD/YYYY)", f)
						}
						if ds.Formats == nil {
							ds.Formats = map[string]string{}
						}
						ds.Formats[k.Value] = f
					}},
				)
				if _, ok := ds.Inputs[k.Value]; !ok && iv.Kind == yaml.MappingNode {
					doc.At(iv, sub+".param", "missing (the parameter this input takes)")
				}
			})
		}},
		yamlstrict.Field{Key: "columns", Fn: func(v *yaml.Node, fp string) {
			if v.Kind != yaml.SequenceNode {
				doc.At(v, fp, "want a list of the columns Plex returns, in order ({Name: type} or Name), got %s", doc.Describe(v))
				return
			}
			seenCol := map[string]bool{}
			for j, c := range v.Content {
				ip := yamlstrict.Index(fp, j)
				name, typ := "", source.TypeString
				switch {
				case c.Kind == yaml.ScalarNode:
					name, _ = doc.Str(c, ip)
				case c.Kind == yaml.MappingNode && len(c.Content) == 2:
					name = c.Content[0].Value
					if t, ok := doc.Str(c.Content[1], yamlstrict.Join(ip, name)); ok {
						typ = source.Type(t)
						if !slices.Contains(columnTypes, typ) {
							doc.At(c.Content[1], yamlstrict.Join(ip, name), "unknown type %q (want %s)", t, strings.Join(columnTypeNames(), ", "))
						}
					}
				default:
					doc.At(c, ip, "want Name or {Name: type}, got %s", doc.Describe(c))
					continue
				}
				if !columnRE.MatchString(name) {
					doc.At(c, ip, "bad column name %q", name)
				}
				if seenCol[strings.ToLower(name)] {
					doc.At(c, ip, "column %q twice", name)
				}
				seenCol[strings.ToLower(name)] = true
				ds.Columns = append(ds.Columns, name)
				ds.Types = append(ds.Types, typ)
			}
		}},
		yamlstrict.Field{Key: "sql", Fn: func(v *yaml.Node, fp string) {
			rn.dsSQL = v
			ds.SQL, _ = doc.Str(v, fp)
			if strings.TrimSpace(ds.SQL) == "" {
				doc.At(v, fp, "empty SQL")
			}
		}},
		yamlstrict.Field{Key: "lookups", Fn: func(v *yaml.Node, fp string) {
			rn.dsLookups = v
			parseLookups(doc, v, fp, ds, rn)
		}},
	)
	if n.Kind == yaml.MappingNode && seen["key"] == nil {
		doc.At(n, path+".key", "missing (the data source's key in Plex)")
	}
	return ds
}

// lookupNameRE is a lookup's table name in the shaping SQLite.
var lookupNameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`) })

// parseLookups reads datasource.lookups: {TABLE: {source, sql, max_rows}}, the small
// tables (a warehouse's account categories) datasource.sql reads beside the table
// datasource. They are the definition's: which source and what SQL are written here,
// and a job's parameters only fill the :name placeholders.
//
//	lookups:
//	  accounts: {source: warehouse, sql: "SELECT ... WHERE pcn = :pcn", max_rows: 20000}
func parseLookups(doc *yamlstrict.Doc, v *yaml.Node, fp string, ds *source.DataSource, rn *requestNodes) {
	doc.Pairs(v, fp, "a mapping (table name: {source, sql, max_rows})", "lookup", func(k, lv *yaml.Node, sub string) {
		lk := source.Lookup{Name: k.Value, MaxRows: source.LookupDefaultMaxRows}
		if !lookupNameRE().MatchString(k.Value) || k.Value == "datasource" {
			doc.At(k, sub, "bad table name %q (lower-case letters, digits and '_', not datasource)", k.Value)
		}
		var sqlNode, srcNode *yaml.Node
		seen := doc.Mapping(lv, sub,
			yamlstrict.Field{Key: "source", Fn: func(sv *yaml.Node, sp string) { srcNode = sv; lk.Source, _ = doc.Str(sv, sp) }},
			yamlstrict.Field{Key: "sql", Fn: func(qv *yaml.Node, qp string) {
				sqlNode = qv
				lk.SQL, _ = doc.Str(qv, qp)
				if strings.TrimSpace(lk.SQL) == "" {
					doc.At(qv, qp, "empty SQL")
				}
			}},
			yamlstrict.Field{Key: "max_rows", Fn: func(mv *yaml.Node, mp string) {
				if m, ok := doc.Int(mv, mp); ok {
					if m < 1 || m > source.LookupMaxRowsLimit {
						doc.At(mv, mp, "must be 1 to %d, got %d", source.LookupMaxRowsLimit, m)
					}
					lk.MaxRows = m
				}
			}},
		)
		if lv.Kind == yaml.MappingNode {
			if seen["source"] == nil {
				doc.At(lv, sub+".source", "missing (the configured SQL source the table is read from, e.g. warehouse)")
			}
			if seen["sql"] == nil {
				doc.At(lv, sub+".sql", "missing (the SELECT that reads the table)")
			}
		}
		ds.Lookups = append(ds.Lookups, lk)
		rn.lookupSQL = append(rn.lookupSQL, sqlNode)
		rn.lookupSrc = append(rn.lookupSrc, srcNode)
	})
}

// checkDataSource runs after the parameters are known: the fan-out parameters have
// the right types, the columns it adds do not clash with Plex's, and datasource.sql
// names declared parameters only and is one SQLite statement over the table
// datasource.
func checkDataSource(doc *yamlstrict.Doc, d *Definition, rn *requestNodes) {
	ds := d.DataSource
	if ds.PCN != "" && rn.dsPCN != nil {
		prm := d.Param(ds.PCN)
		switch {
		case prm == nil:
			doc.At(rn.dsPCN, "datasource.pcn", "%q is not a declared parameter (declared: %s)", ds.PCN, d.paramNames())
		case prm.Type != TypeInt && prm.Type != "list<int>":
			doc.At(rn.dsPCN, "datasource.pcn", "%q is %s; the PCN parameter is an int or list<int>", ds.PCN, prm.Type)
		}
	}
	if ds.Periods[0] != "" && rn.dsPeriods != nil {
		for i, name := range ds.Periods {
			prm := d.Param(name)
			at := rn.dsPeriods
			if rn.dsPeriods.Kind == yaml.SequenceNode && i < len(rn.dsPeriods.Content) {
				at = rn.dsPeriods.Content[i]
			}
			switch {
			case prm == nil:
				doc.At(at, yamlstrict.Index("datasource.periods", i), "%q is not a declared parameter (declared: %s)", name, d.paramNames())
			case prm.Type != TypePeriod:
				doc.At(at, yamlstrict.Index("datasource.periods", i), "%q is %s, not a period", name, prm.Type)
			}
		}
	}
	if ds.SQL != "" && rn.dsSQL != nil {
		declared := map[string]bool{}
		for _, prm := range d.Params {
			declared[prm.Name] = true
		}
		checkQuery(doc, rn.dsSQL, "datasource.sql", ds.SQL, []string{source.DialectSQLite}, declared)
	}
	if len(ds.Lookups) > 0 && ds.SQL == "" && rn.dsLookups != nil {
		doc.At(rn.dsLookups, "datasource.lookups", "datasource.sql reads the lookups, and there is none")
	}
	if len(ds.Lookups) > 0 {
		declared := map[string]bool{}
		for _, prm := range d.Params {
			declared[prm.Name] = true
		}
		for i, lk := range ds.Lookups {
			// A lookup reads the warehouse: MySQL/MariaDB, or the SQLite demo standing in
			// for it, so its SQL is checked as both read it.
			checkQuery(doc, rn.lookupSQL[i], "datasource.lookups."+lk.Name+".sql", lk.SQL, []string{source.DialectMySQL, source.DialectSQLite}, declared)
		}
	}
}

// checkRequest runs after the whole file is read: exactly one request form, and the
// parameters a procedure or data source passes are declared, single values.
func checkRequest(doc *yamlstrict.Doc, root *yaml.Node, d *Definition, seen map[string]*yaml.Node, rn *requestNodes) {
	d.keyPos = make(map[string]yamlstrict.Pos, len(seen))
	for k, n := range seen {
		d.keyPos[k] = yamlstrict.PosOf(n)
	}
	var forms []string
	for _, k := range []string{"sql", "dialects", "procedure", "datasource"} {
		if seen[k] != nil {
			forms = append(forms, k)
		}
	}
	switch {
	case len(forms) == 0:
		doc.At(root, "sql", "missing (a definition needs sql:, dialects:, procedure: or datasource:)")
	case len(forms) > 1 && !(len(forms) == 2 && forms[0] == "sql" && forms[1] == "dialects"):
		other := forms[len(forms)-1]
		doc.At(seen[other], other, "cannot be combined with %s: (a definition asks its source in one way)", forms[0])
	}
	arg := func(n *yaml.Node, path, name string, listOK bool) {
		prm := d.Param(name)
		switch {
		case prm == nil:
			doc.At(n, path, "%q is not a declared parameter (declared: %s)", name, d.paramNames())
		case prm.List() && !listOK:
			doc.At(n, path, "%q is a list (%s); a procedure takes single values", name, prm.Type)
		}
	}
	if d.Procedure != nil && rn.procArgs != nil && rn.procArgs.Kind == yaml.SequenceNode {
		for i, a := range d.Procedure.Args {
			arg(rn.procArgs.Content[i], fmt.Sprintf("procedure.args[%d]", i), a, false)
		}
	}
	if d.DataSource != nil && rn.dsInputs != nil && rn.dsInputs.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(rn.dsInputs.Content); i += 2 {
			k := rn.dsInputs.Content[i]
			if name, ok := d.DataSource.Inputs[k.Value]; ok {
				// A list goes to Plex as a comma list (@PCNs: 123681,300758).
				arg(k, "datasource.inputs."+k.Value, name, true)
			}
		}
	}
	if d.DataSource != nil {
		checkDataSource(doc, d, rn)
		for _, n := range rn.lookupSrc {
			d.lookupPos = append(d.lookupPos, yamlstrict.PosOf(n))
		}
	}
}

// Features lists the definition features a run of d needs beyond what every agent
// since v0.1.0 runs (empty for a plain sql: report).
func (d *Definition) Features() []string {
	var out []string
	if d.Procedure != nil {
		out = append(out, FeatureProcedure)
	}
	if d.DataSource != nil {
		out = append(out, FeatureDataSource)
		if len(d.DataSource.Lookups) > 0 {
			out = append(out, FeatureLookups)
		}
	}
	if len(d.LoadedBy) > 0 {
		out = append(out, FeatureLoadedBy)
	}
	return out
}

// Request is what a run of d asks a source of the given driver, with the bound
// parameter values (BindValues).
func (d *Definition) Request(driver string, values map[string]any) source.Request {
	req := source.Request{Params: values}
	switch {
	case d.Procedure != nil:
		proc := *d.Procedure
		proc.Args = slices.Clone(proc.Args)
		req.Procedure = &proc
	case d.DataSource != nil:
		ds := *d.DataSource
		req.DataSource = &ds
	default:
		req.SQL = d.SQLFor(driver)
	}
	return req
}

// CheckDriver reports, as a definition error at the line of the request key, that a
// source of the given driver cannot run d (a procedure on SQLite, a data source on MySQL). Submit,
// `rpt reports run` and `rpt reports validate` call it with the driver of the source
// rpt.yaml configures; nil when the driver can run it.
func (d *Definition) CheckDriver(driver string) error {
	req := d.Request(driver, nil)
	key := req.What()
	var msg string
	if key == "sql" && req.SQL == "" {
		// Only dialects:, none of them for this driver.
		key = "dialects"
		msg = fmt.Sprintf("no entry for %s and no sql: to fall back on", driver)
	} else if err := req.Validate(driver); err != nil {
		msg = strings.TrimPrefix(err.Error(), source.ErrRequest.Error()+": ")
	} else {
		return nil
	}
	if strings.Contains(strings.ToLower(msg), strings.ToLower(driver)) {
		// The reason names the driver already: say it once.
		return fieldError(d.File, d.keyPos[key], key, "source %q: %s", d.Source, msg)
	}
	return fieldError(d.File, d.keyPos[key], key, "source %q is %s: %s", d.Source, driver, msg)
}

// routeFor is the route of a run of d: its requires: labels and the capability label
// of each feature it uses. A definition using no new feature gets no new label, so
// agents of every version keep taking it.
func (d *Definition) routeFor() map[string]string {
	feats := d.Features()
	if len(d.Requires) == 0 && len(feats) == 0 {
		return nil
	}
	route := make(map[string]string, len(d.Requires)+len(feats))
	for k, v := range d.Requires {
		route[k] = v
	}
	for _, f := range feats {
		route[queue.FeatureLabel(f)] = queue.CapabilityYes
	}
	return route
}

// The source names the shipped definitions and the embedded default use: plex is the
// Plex web-services source (driver plexws), plex-odbc Plex's ODBC data source (driver
// odbc), azure-dw the SQL Server snapshot. Earlier versions named an SQL
// source plex; CheckSource says what to rename when it meets that.
const (
	PlexSource     = "plex"
	PlexODBCSource = "plex-odbc"
	AzureDWSource  = "azure-dw"
	OldPlexSource  = PlexSource
)

// CheckSource checks d against the configured sources as every front door does before
// it queues or runs anything: its source: must be configured (the error names the
// source, where it is written and what is configured; where names the configuration,
// such as the rpt.yaml path), and that source's driver must be able to run its request
// (CheckDriver). Validate, submit and `rpt reports run` call it, so a definition is
// refused the same way at each.
func (d *Definition) CheckSource(sources map[string]source.Config, where string) error {
	sc, ok := sources[d.Source]
	if !ok {
		names := sortedKeys(sources)
		list := strings.Join(names, ", ")
		if list == "" {
			list = "none"
		}
		msg := fmt.Sprintf("%q is not configured in %s (sources: %s)", d.Source, where, list)
		if old, ok := sources[OldPlexSource]; ok && d.Source == PlexODBCSource && old.DriverName() != source.DriverPlexWS {
			// A configuration written when the live reports read a SQL source named plex.
			return fieldError(d.File, d.SourcePos, "source", "%s; the live reports read %s (Plex's ODBC data source): %s now names the Plex web-services source (driver: plexws), so rename sources.%s (driver: %s) to %s in %s",
				msg, PlexODBCSource, OldPlexSource, OldPlexSource, old.DriverName(), PlexODBCSource, where)
		}
		return fieldError(d.File, d.SourcePos, "source", "%s", didyoumean.Append(msg, d.Source, names))
	}
	if err := d.CheckDriver(sc.SQLDialect()); err != nil {
		return err
	}
	if d.DataSource != nil {
		for i, lk := range d.DataSource.Lookups {
			field := "datasource.lookups." + lk.Name + ".source"
			var at yamlstrict.Pos
			if i < len(d.lookupPos) {
				at = d.lookupPos[i]
			}
			lc, ok := sources[lk.Source]
			if !ok {
				names := sortedKeys(sources)
				msg := fmt.Sprintf("%q is not configured in %s (sources: %s)", lk.Source, where, strings.Join(names, ", "))
				return fieldError(d.File, at, field, "%s", didyoumean.Append(msg, lk.Source, names))
			}
			if drv := lc.DriverName(); drv == source.DriverPlexWS {
				return fieldError(d.File, at, field, "source %q is %s; a lookup reads a SQL source (the warehouse the ETL loads)", lk.Source, drv)
			}
		}
	}
	if source.NeedsColumnTypes(sc.DriverName()) && len(d.Columns) == 0 {
		// Which columns a query returns is known only when it runs (the run refuses a
		// column left out, naming it); a definition without columns: is refused here.
		at := d.keyPos["columns"]
		if at.Line == 0 {
			at = d.SourcePos
		}
		return fieldError(d.File, at, "columns", "source %q is %s: every column must be typed in columns: (an ODBC driver reads DECIMAL as a float, so money would not be exact); add columns: with each column's type (decimal, string, int, date, ...)",
			d.Source, sc.DriverName())
	}
	return nil
}

// CheckNeeds checks that every ETL a needs: entry names is one of etls: the names of
// the ETL catalogue the agents run, which reportdefs cannot read itself (etl sits in its
// layer: architecture_test.go). The submit path and rpt reports validate call it.
func (d *Definition) CheckNeeds(etls []string) error {
	var errs []error
	for i, n := range d.Needs {
		if slices.Contains(etls, n.ETL) {
			continue
		}
		msg := fmt.Sprintf("unknown ETL %q (ETLs: %s)", n.ETL, strings.Join(etls, ", "))
		errs = append(errs, fieldError(d.File, n.Pos, yamlstrict.Index("needs", i)+".etl", "%s", didyoumean.Append(msg, n.ETL, etls)))
	}
	for i, e := range d.LoadedBy {
		if slices.Contains(etls, e) {
			continue
		}
		var at yamlstrict.Pos
		if i < len(d.LoadedByPos) {
			at = d.LoadedByPos[i]
		}
		msg := fmt.Sprintf("unknown ETL %q (ETLs: %s)", e, strings.Join(etls, ", "))
		errs = append(errs, fieldError(d.File, at, yamlstrict.Index("loaded_by", i), "%s", didyoumean.Append(msg, e, etls)))
	}
	if len(errs) == 1 {
		return errs[0]
	}
	return errors.Join(errs...)
}
