package demo

import (
	"fmt"
	"iter"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"
)

// The production and maintenance side of the demo: per plant (PCN) the work-center
// statuses with their flags, work centers, parts, a work-center log and daily shift
// report rows, in the shape of Plex's part_v_* views.
//
// The log of a work center is a contiguous sequence of status intervals (log_date is
// the start, log_hours the duration; no gaps, no overlaps) made of three shifts a day
// (06:00, 14:00, 22:00; report_date is the day the shift starts), from 06:00 on the
// first log day to 06:00 on End's day (the night shift of the last report date).
// log_date is plant-local wall time, as in Plex; log_date is unique per work center. Each shift is
// generated from a PCG seeded by (seed, pcn, work center, shift), so a day's log does
// not change when LogDays grows. Durations are whole hundredths of an hour (36
// seconds), so log_date + log_hours is exactly the next log_date.
//
// Hours are exact: Hours counts ten-thousandths of an hour; MySQL stores them as
// DECIMAL(9,4), SQLite as INTEGER in columns with an _x10000 suffix
// (log_hours_x10000, earned_hours_x10000, actual_hours_x10000).

// DefaultLogDays is the number of days of work-center logs when Options.LogDays is 0:
// short enough that the quickstart's load stays quick.
const DefaultLogDays = 60

// MaxLogDays bounds Options.LogDays (ten years).
const MaxLogDays = 3660

// Albion is the PCN whose status keys are the ones Plex has there.
const Albion = 300758

// Hours is a duration in ten-thousandths of an hour, the precision of Plex's
// log_hours DECIMAL(9,4).
type Hours int64

// String formats h as a decimal with four places, "1.2300", as MySQL prints DECIMAL(x,4).
func (h Hours) String() string {
	neg := h < 0
	u := uint64(h)
	if neg {
		u = -u
	}
	b := make([]byte, 0, 24)
	if neg {
		b = append(b, '-')
	}
	b = strconv.AppendUint(b, u/10000, 10)
	f := u % 10000
	return string(append(b, '.', byte('0'+f/1000), byte('0'+f/100%10), byte('0'+f/10%10), byte('0'+f%10)))
}

// plantDef is one of the plants of DOMAIN.md with its number of work centers at scale 1.
type plantDef struct {
	pcn         int
	name        string
	workcenters int
}

// plants are the seven manufacturing PCNs (HQ has no production): 117 work centers.
var plants = []plantDef{
	{295932, "Fruitport", 18},
	{295933, "Franklin", 14},
	{300757, "Alabama", 16},
	{300758, "Albion", 22},
	{306766, "Edon", 15},
	{310507, "Avilla", 20},
	{312055, "WorkHolding", 12},
}

// otherPlantWorkcenters is the number of work centers (at scale 1) of a plant PCN that
// is not one of the known plants.
const otherPlantWorkcenters = 16

// DefaultPlants returns the PCNs that get production data by default: the seven plants.
func DefaultPlants() []int {
	out := make([]int, len(plants))
	for i, p := range plants {
		out[i] = p.pcn
	}
	return out
}

func (o Options) normalizeProduction() (Options, error) {
	switch {
	case o.LogDays == 0:
		o.LogDays = DefaultLogDays
	case o.LogDays == -1:
		// no production data
	case o.LogDays < -1 || o.LogDays > MaxLogDays:
		return o, fmt.Errorf("%w: log_days: %d: must be 1..%d, or -1 for none", ErrInvalid, o.LogDays, MaxLogDays)
	}
	if o.Plants == nil {
		o.Plants = DefaultPlants()
	} else {
		seen := make(map[int]bool, len(o.Plants))
		for i, p := range o.Plants {
			if p <= 0 || p > 1<<31-1 {
				return o, fmt.Errorf("%w: plants[%d]: %d: must be a positive INT", ErrInvalid, i, p)
			}
			if seen[p] {
				return o, fmt.Errorf("%w: plants[%d]: %d appears twice", ErrInvalid, i, p)
			}
			seen[p] = true
		}
		o.Plants = slices.Clone(o.Plants)
	}
	if o.logDays() > 0 && o.logStart().Year() < 1900 {
		return o, fmt.Errorf("%w: log_days: %d days before %s starts before 1900", ErrInvalid, o.LogDays, o.logEnd.Format(dateLayout))
	}
	return o, nil
}

// logDays is the number of log days of normalized options (0: none).
func (o Options) logDays() int { return max(o.LogDays, 0) }

// logStart is the first day of the log.
func (o Options) logStart() time.Time { return o.logEnd.AddDate(0, 0, -o.logDays()) }

func (o Options) hasPlant(pcn int) bool { return o.logDays() > 0 && slices.Contains(o.Plants, pcn) }

// Status roles: what a work-center status means, whatever its key at a PCN.
const (
	roleProduction = iota
	roleUnplanned
	rolePlanned
	roleIdle
	roleOff
	roleChangeover
	roleCrash
	roleQualityHold
	numRoles
)

// WorkCenterStatus is a row of part_v_workcenter_status_e.
type WorkCenterStatus struct {
	PCN                   int
	Key                   int
	Description           string
	Production            bool
	Idle                  bool
	Downtime              bool
	Maintenance           bool
	PlannedProductionTime bool
}

// Failure reports whether the status is unplanned downtime, the failures of
// mean-time-to-failure and the repairs of mean-time-to-repair: downtime that needs
// maintenance during planned production time (Unplanned Downtime and Machine Crash;
// not Planned Downtime, which is outside planned production time, nor Changeover or
// Quality Hold, which need no maintenance).
func (s WorkCenterStatus) Failure() bool {
	return s.Downtime && s.Maintenance && s.PlannedProductionTime
}

// roleDefs gives each role its description and flags: production, idle, downtime,
// maintenance, planned production time.
var roleDefs = [numRoles]struct {
	desc  string
	flags [5]bool
}{
	roleProduction:  {"Production", [5]bool{true, false, false, false, true}},
	roleUnplanned:   {"Unplanned Downtime", [5]bool{false, false, true, true, true}},
	rolePlanned:     {"Planned Downtime", [5]bool{false, false, true, true, false}},
	roleIdle:        {"Idle", [5]bool{false, true, false, false, true}},
	roleOff:         {"Off", [5]bool{false, false, false, false, false}},
	roleChangeover:  {"Changeover", [5]bool{false, false, true, false, true}},
	roleCrash:       {"Machine Crash", [5]bool{false, false, true, true, true}},
	roleQualityHold: {"Quality Hold", [5]bool{false, false, true, false, true}},
}

// albionKeys are the status keys Plex has at Albion (which has no Quality Hold).
var albionKeys = [numRoles]int{219, 222, 213, 220, 221, 4790, 5363, 0}

// statusKeys returns the status key of each role at a PCN (0: the PCN has no such
// status). Other plants have their own keys, so a report that hard-codes Albion's
// keys is wrong elsewhere.
func statusKeys(pcn int) [numRoles]int {
	if pcn == Albion {
		return albionKeys
	}
	var k [numRoles]int
	base := 1000 + pcn%1000*10
	for r := range k {
		k[r] = base + r + 1
	}
	return k
}

// WorkCenterStatuses returns the statuses of a PCN, by key.
func WorkCenterStatuses(pcn int) []WorkCenterStatus {
	keys := statusKeys(pcn)
	var out []WorkCenterStatus
	for r, k := range keys {
		if k == 0 {
			continue
		}
		d := roleDefs[r]
		out = append(out, WorkCenterStatus{PCN: pcn, Key: k, Description: d.desc, Production: d.flags[0], Idle: d.flags[1],
			Downtime: d.flags[2], Maintenance: d.flags[3], PlannedProductionTime: d.flags[4]})
	}
	slices.SortFunc(out, func(a, b WorkCenterStatus) int { return a.Key - b.Key })
	return out
}

// wcType is a kind of work center with the operation it performs.
type wcType struct {
	code, name        string
	opNo              int
	opCode            string
	rateLo, rateHi    int // standard parts per hour
	nouns             []string
	laborCentsPerHour int64
}

var wcTypes = []wcType{
	{"CNC", "CNC Machining Center", 20, "Machine", 15, 60, []string{"Housing", "Shaft", "Flange", "Valve Body", "Spindle"}, 2850},
	{"PRS", "Stamping Press", 10, "Stamp", 300, 900, []string{"Bracket", "Reinforcement", "Panel", "Clip", "Hinge Plate"}, 2475},
	{"WLD", "Robotic Weld Cell", 30, "Weld", 30, 120, []string{"Frame Assembly", "Crossmember", "Seat Frame", "Cradle"}, 2640},
	{"ASY", "Assembly Line", 40, "Assemble", 60, 240, []string{"Pump Module", "Latch Assembly", "Sensor Unit", "Actuator"}, 2210},
	{"MLD", "Injection Molding Machine", 10, "Mold", 60, 300, []string{"Bezel", "Cover", "Connector Housing", "Trim Panel"}, 2390},
	{"HTR", "Heat Treat Furnace", 50, "Heat Treat", 100, 500, []string{"Gear Blank", "Pin", "Bushing"}, 2560},
}

var partQualifiers = []string{"Front", "Rear", "Left Hand", "Right Hand", "Upper", "Lower", "Inner", "Outer"}

// Work-center schedules: which shifts a work center works.
const (
	sched24x7 = iota // every shift every day
	sched3x5         // three shifts Monday to Friday, first shift Saturday
	sched2x5         // two shifts Monday to Friday
	sched1x5         // day shift Monday to Friday
)

// WorkCenter is a row of part_v_workcenter_e.
type WorkCenter struct {
	PCN  int
	Key  int
	Code string
	Name string

	typ      int   // index into wcTypes
	schedule int   // sched*
	runSpan  int   // production runs last 8..8+runSpan-1 hundredths of an hour
	parts    []int // indexes into the plant's parts
}

// Part is a row of part_v_part_e, with the one operation it has on its work centers.
type Part struct {
	PCN           int
	Key           int
	No            string
	Revision      string
	Name          string
	OperationNo   int
	OperationCode string
	OperationKey  int // part_operation_key
	Rate          int // standard parts per hour

	typ int
}

// plant is the generated production master data of one PCN.
type plant struct {
	pcn         int
	statusKeys  [numRoles]int
	workcenters []WorkCenter
	parts       []Part
	shiftKeys   [3]int
	eventKeys   []int
}

// workcenterCount is the number of work centers of a plant at a scale.
func workcenterCount(pcn, scale int) int {
	for _, p := range plants {
		if p.pcn == pcn {
			return p.workcenters * scale
		}
	}
	return otherPlantWorkcenters * scale
}

// newPlant builds a plant's master data; it depends on the seed, the PCN and the scale only.
func newPlant(o Options, pcn int) *plant {
	p := &plant{pcn: pcn, statusKeys: statusKeys(pcn)}
	base := pcn % 1000
	for s := range p.shiftKeys {
		p.shiftKeys[s] = base*10 + s + 1
	}
	for e := range 6 {
		p.eventKeys = append(p.eventKeys, base*100+e+1)
	}
	var pcg rand.PCG
	r := rand.New(&pcg)
	n := workcenterCount(pcn, o.Scale)
	pcg.Seed(mix(uint64(o.Seed), uint64(pcn), 0x776f726b63656e74, 0)) // "workcent"
	perType := make([]int, len(wcTypes))
	p.workcenters = make([]WorkCenter, n)
	for i := range p.workcenters {
		t := r.IntN(len(wcTypes))
		perType[t]++
		wc := WorkCenter{
			PCN:     pcn,
			Key:     base*100000 + i + 1,
			Code:    fmt.Sprintf("%s-%03d", wcTypes[t].code, 101+i),
			typ:     t,
			runSpan: 50 + r.IntN(120),
		}
		wc.Name = fmt.Sprintf("%s %d", wcTypes[t].name, i+1)
		switch x := r.IntN(100); {
		case x < 20:
			wc.schedule = sched24x7
			wc.runSpan = 70 + r.IntN(30) // the busy ones log the most
		case x < 50:
			wc.schedule = sched3x5
		case x < 85:
			wc.schedule = sched2x5
		default:
			wc.schedule = sched1x5
		}
		p.workcenters[i] = wc
	}
	// Parts per work-center type: two for each work center of the type, plus two.
	byType := make([][]int, len(wcTypes))
	for t, wt := range wcTypes {
		if perType[t] == 0 {
			continue
		}
		for j := range 2*perType[t] + 2 {
			k := len(p.parts)
			part := Part{
				PCN:           pcn,
				Key:           base*100000 + 50000 + k + 1,
				No:            fmt.Sprintf("%d%02d-%04d", pcn%10, t+1, 1000+j*7),
				Revision:      string(rune('A' + r.IntN(4))),
				Name:          wt.nouns[j%len(wt.nouns)] + ", " + partQualifiers[(j/len(wt.nouns)+r.IntN(2))%len(partQualifiers)],
				OperationNo:   wt.opNo,
				OperationCode: wt.opCode,
				Rate:          wt.rateLo + r.IntN(wt.rateHi-wt.rateLo+1),
				typ:           t,
			}
			part.OperationKey = part.Key*10 + t
			p.parts = append(p.parts, part)
			byType[t] = append(byType[t], k)
		}
	}
	for i := range p.workcenters {
		wc := &p.workcenters[i]
		cand := slices.Clone(byType[wc.typ])
		r.Shuffle(len(cand), func(a, b int) { cand[a], cand[b] = cand[b], cand[a] })
		wc.parts = cand[:min(len(cand), 2+r.IntN(3))]
	}
	return p
}

// WorkCenters returns the work centers of a plant, by key.
func WorkCenters(opts Options, pcn int) ([]WorkCenter, error) {
	o, err := opts.normalize()
	if err != nil {
		return nil, err
	}
	if !slices.Contains(o.Plants, pcn) {
		return nil, fmt.Errorf("%w: pcn: %d is not one of the options' plants %v", ErrInvalid, pcn, o.Plants)
	}
	return slices.Clone(newPlant(o, pcn).workcenters), nil
}

// Parts returns the parts of a plant, by key.
func Parts(opts Options, pcn int) ([]Part, error) {
	o, err := opts.normalize()
	if err != nil {
		return nil, err
	}
	if !slices.Contains(o.Plants, pcn) {
		return nil, fmt.Errorf("%w: pcn: %d is not one of the options' plants %v", ErrInvalid, pcn, o.Plants)
	}
	return slices.Clone(newPlant(o, pcn).parts), nil
}

// LogEntry is a row of part_v_workcenter_log_e: one status interval of a work center.
type LogEntry struct {
	PCN              int
	Key              int64
	WorkcenterKey    int
	Start            time.Time // log_date
	Hours            Hours     // log_hours
	StatusKey        int
	EventKey         int // workcenter_event_key; 0 for none (NULL)
	PartKey          int // 0 for none (NULL)
	PartOperationKey int // 0 for none (NULL)
	ShiftKey         int
	ReportDate       time.Time

	failure    bool // the status is unplanned downtime (WorkCenterStatus.Failure)
	production bool // the status has production_status
}

// ShiftReport is a row of daily_shift_report: one work center's part in one shift.
type ShiftReport struct {
	PCN              int
	ReportDate       time.Time
	ShiftKey         int
	WorkcenterKey    int
	WorkcenterCode   string
	PartKey          int
	PartNo           string
	PartRevision     string
	PartName         string
	OperationNo      int
	OperationCode    string
	PartsProduced    int64
	PartsScrapped    int64
	EarnedHours      Hours
	ActualHours      Hours // production hours of the shift in the log
	QuantityProduced int64
	LaborRate        Cents // per hour
}

// shiftUnits is the length of a shift in hundredths of an hour.
const shiftUnits = 800

// epoch numbers days and shifts for seeding.
var epoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// shiftGen generates the shifts of one work center; it reuses its PCG and buffers.
type shiftGen struct {
	o    Options
	p    *plant
	wc   *WorkCenter
	pcg  rand.PCG
	r    *rand.Rand
	rows []LogEntry
}

func newShiftGen(o Options, p *plant) *shiftGen {
	g := &shiftGen{o: o, p: p}
	g.r = rand.New(&g.pcg)
	return g
}

// partFor is the part a work center runs in shift number si: jobs last three shifts.
func (g *shiftGen) partFor(si int64) *Part {
	h := splitmix(uint64(g.o.Seed) ^ splitmix(uint64(g.wc.Key)^splitmix(uint64(si/3)+uint64(g.p.pcn))))
	return &g.p.parts[g.wc.parts[h%uint64(len(g.wc.parts))]]
}

func (g *shiftGen) works(day time.Time, shift int) bool {
	wd := day.Weekday()
	weekday := wd >= time.Monday && wd <= time.Friday
	switch g.wc.schedule {
	case sched24x7:
		return true
	case sched3x5:
		return weekday || (wd == time.Saturday && shift == 0)
	case sched2x5:
		return weekday && shift < 2
	}
	return weekday && shift == 0
}

// shift generates one shift of the current work center into g.rows (replacing them)
// and returns its daily shift report row, if the shift was worked.
func (g *shiftGen) shift(day time.Time, shift int) (ShiftReport, bool) {
	g.rows = g.rows[:0]
	si := int64(day.Sub(epoch)/(24*time.Hour))*3 + int64(shift)
	g.pcg.Seed(mix(uint64(g.o.Seed), uint64(g.p.pcn), uint64(g.wc.Key), uint64(si)))
	r := g.r
	start := day.Add(time.Duration(6+8*shift) * time.Hour)
	shiftKey := g.p.shiftKeys[shift]
	t := 0
	var part *Part
	emit := func(role, units int, withEvent bool) {
		units = min(units, shiftUnits-t)
		if units <= 0 {
			return
		}
		key := g.p.statusKeys[role]
		if key == 0 { // no such status at this PCN (Albion has no Quality Hold)
			role = roleIdle
			key = g.p.statusKeys[role]
			withEvent = false
		}
		e := LogEntry{
			PCN:           g.p.pcn,
			WorkcenterKey: g.wc.Key,
			Start:         start.Add(time.Duration(t) * 36 * time.Second),
			Hours:         Hours(units * 100),
			StatusKey:     key,
			ShiftKey:      shiftKey,
			ReportDate:    day,
			failure:       role == roleUnplanned || role == roleCrash,
			production:    role == roleProduction,
		}
		if withEvent {
			e.EventKey = g.p.eventKeys[r.IntN(len(g.p.eventKeys))]
		}
		if part != nil {
			e.PartKey = part.Key
			e.PartOperationKey = part.OperationKey
		}
		g.rows = append(g.rows, e)
		t += units
	}
	if !g.works(day, shift) {
		emit(roleOff, shiftUnits, false)
		return ShiftReport{}, false
	}
	switch x := r.IntN(100); {
	case x < 2: // preventive maintenance all shift
		emit(rolePlanned, shiftUnits, true)
		return ShiftReport{}, false
	case x < 4: // no operator: idle all shift, an empty shift report
		part = g.partFor(si)
		emit(roleIdle, shiftUnits, false)
		return g.report(day, shiftKey, part, 0, r), true
	}
	part = g.partFor(si)
	if prev := g.partFor(si - 1); prev.Key != part.Key {
		emit(roleChangeover, 25+r.IntN(100), true)
	}
	produced := 0
	for t < shiftUnits {
		before := t
		emit(roleProduction, 8+r.IntN(g.wc.runSpan), false)
		produced += t - before
		// Interruptions: mostly short idle time and holds, breaks, and now and then a
		// failure (about one every ten production hours).
		switch x := r.IntN(1000); {
		case x < 620:
			emit(roleIdle, 3+r.IntN(30), false)
		case x < 780:
			emit(roleQualityHold, 5+r.IntN(40), true)
		case x < 820:
			emit(roleUnplanned, 5+r.IntN(80), true)
			if r.IntN(100) < 15 { // a failure runs into another: still one event
				emit(roleCrash, 20+r.IntN(200), true)
			}
		case x < 825:
			emit(roleCrash, 60+r.IntN(400), true)
		default:
			emit(rolePlanned, 20+r.IntN(30), true)
		}
	}
	return g.report(day, shiftKey, part, produced, r), true
}

// report builds the daily shift report row of a shift with produced hundredths of an
// hour of production.
func (g *shiftGen) report(day time.Time, shiftKey int, part *Part, produced int, r *rand.Rand) ShiftReport {
	actual := Hours(produced * 100)
	rate := int64(part.Rate)
	perf := int64(70 + r.IntN(36))
	good := int64(actual) * rate * perf / (10000 * 100)
	scrapped := good * int64(r.IntN(40)) / 1000
	if good > 0 && r.IntN(100) < 20 {
		scrapped++
	}
	return ShiftReport{
		PCN:              g.p.pcn,
		ReportDate:       day,
		ShiftKey:         shiftKey,
		WorkcenterKey:    g.wc.Key,
		WorkcenterCode:   g.wc.Code,
		PartKey:          part.Key,
		PartNo:           part.No,
		PartRevision:     part.Revision,
		PartName:         part.Name,
		OperationNo:      part.OperationNo,
		OperationCode:    part.OperationCode,
		PartsProduced:    good,
		PartsScrapped:    scrapped,
		EarnedHours:      Hours((good*10000*2 + rate) / (2 * rate)), // good/rate hours, rounded half up
		ActualHours:      actual,
		QuantityProduced: good,
		LaborRate:        Cents(wcTypes[part.typ].laborCentsPerHour + int64(g.p.pcn%7)*15),
	}
}

// workcenterLog streams the log of one work center over the options' log days, in
// time order, with the shift report rows of its worked shifts; log keys are not set.
func (g *shiftGen) workcenterLog(wc *WorkCenter, fn func(rows []LogEntry, rep *ShiftReport) bool) {
	g.wc = wc
	for day := g.o.logStart(); day.Before(g.o.logEnd); day = day.AddDate(0, 0, 1) {
		for s := range 3 {
			rep, ok := g.shift(day, s)
			var rp *ShiftReport
			if ok {
				rp = &rep
			}
			if !fn(g.rows, rp) {
				return
			}
		}
	}
}

// WorkCenterLog returns the log of one plant: every work center's entries in time
// order, work centers by key, log keys numbered from 1 in that order.
func WorkCenterLog(opts Options, pcn int) (iter.Seq[LogEntry], error) {
	o, err := opts.normalize()
	if err != nil {
		return nil, err
	}
	if !o.hasPlant(pcn) {
		return nil, fmt.Errorf("%w: pcn: %d is not one of the options' plants %v (or log_days is -1)", ErrInvalid, pcn, o.Plants)
	}
	return func(yield func(LogEntry) bool) {
		p := newPlant(o, pcn)
		g := newShiftGen(o, p)
		key := int64(0)
		for i := range p.workcenters {
			ok := true
			g.workcenterLog(&p.workcenters[i], func(rows []LogEntry, _ *ShiftReport) bool {
				for _, e := range rows {
					key++
					e.Key = key
					if !yield(e) {
						ok = false
						return false
					}
				}
				return true
			})
			if !ok {
				return
			}
		}
	}, nil
}

// ShiftReports returns the daily shift report rows of one plant, by work center key,
// then day and shift.
func ShiftReports(opts Options, pcn int) ([]ShiftReport, error) {
	o, err := opts.normalize()
	if err != nil {
		return nil, err
	}
	if !o.hasPlant(pcn) {
		return nil, fmt.Errorf("%w: pcn: %d is not one of the options' plants %v (or log_days is -1)", ErrInvalid, pcn, o.Plants)
	}
	p := newPlant(o, pcn)
	g := newShiftGen(o, p)
	var out []ShiftReport
	for i := range p.workcenters {
		g.workcenterLog(&p.workcenters[i], func(_ []LogEntry, rep *ShiftReport) bool {
			if rep != nil {
				out = append(out, *rep)
			}
			return true
		})
	}
	return out, nil
}
