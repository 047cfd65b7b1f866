package cli

import (
	"strings"

	ucli "github.com/urfave/cli/v2"
)

// examples are shown under each command's help (rpt submit --help), by the command's
// path. TestHelpTeaches fails for a command without one: a new command adds its line
// here. Dates are relative words (last-month, -3m, +10m), so an example never goes
// stale.
var examples = map[string][]string{
	"quickstart": {"rpt quickstart                 # demo data, an in-process agent, a trial balance printed",
		"rpt quickstart --max-rows 5"},
	"server": {"rpt server                     # embedded broker, the queue and an agent in one process",
		"rpt server --concurrency 4 --broker 127.0.0.1:1884"},
	"agent": {"rpt agent --concurrency 4 --label plant=albion",
		"RPT_QUEUE='mysql://rpt:SECRET@reports31:30031/rpt' rpt agent --listen :9464"},
	"agents":         {"rpt agents list", "rpt agents drain reports31-4711"},
	"agents list":    {"rpt agents list -o json"},
	"agents undrain": {"rpt agents undrain reports31-4711"},
	"agents drain":   {"rpt agents drain reports31-4711   # then stop it; its running jobs finish first"},
	"pause":          {"rpt pause report trial-balance", "rpt pause source plex   # Plex maintenance", "rpt pause   # list the pauses"},
	"resume":         {"rpt resume source plex"},
	"submit": {"rpt submit trial-balance -p start_period=-3m -p end_period=last-month --wait",
		"id=$(rpt submit daily-production -p pcn=300758 -p report_date=yesterday)",
		"rpt submit trial-balance --at +10m --once-per 1h",
		"rpt submit trial-balance --deliver mailto:accounting@example.com   # the .xlsx by e-mail once it succeeds",
		"rpt submit daily-production --from plants.csv   # one job per row: a header of parameter names, then values",
		"printf '{\"pcn\": 300758}\\n{\"pcn\": 123681}\\n' | rpt submit daily-production -p report_date=yesterday --from -"},
	"jobs":      {"rpt jobs", "rpt jobs show 42"},
	"jobs list": {"rpt jobs list --status failed --report trial-balance --limit 5", "rpt jobs list -o tsv | cut -f1,3"},
	"jobs show": {"rpt jobs show 42   # for a queued job: why it waits"},
	"cancel":    {"rpt cancel 42"},
	"retry":     {"rpt retry 42 --wait"},
	"get": {"rpt get 42", "rpt get 42 --file tb.xlsx", "rpt get 42 -o tsv | awk -F'\\t' 'NR > 1 { n++ } END { print n }'",
		"rpt get --latest trial-balance -p pcn=123681 --csv"},
	"watch":            {"rpt watch 42", "rpt watch --report trial-balance --history"},
	"reports":          {"rpt reports list", "rpt reports show trial-balance"},
	"reports publish":  {"rpt reports publish reports/scrap-by-shift.yaml", "rpt reports publish   # the whole catalogue"},
	"reports list":     {"rpt reports list -o json"},
	"sources":          {"rpt sources list", "rpt sources test plex"},
	"sources list":     {"rpt sources list -o json"},
	"sources test":     {"rpt sources test plex   # a Workcenter_Get call per PCN account", "rpt sources test warehouse --timeout 5s"},
	"reports show":     {"rpt reports show trial-balance", "rpt reports show trial-balance -o json"},
	"reports validate": {"rpt reports validate reports/*.yaml", "rpt reports validate   # the whole catalogue"},
	"reports run":      {"rpt reports run mean-time-to-failure -p pcn=300758 -o csv"},
	"db":               {"rpt db migrate", "rpt db status"},
	"db prune":         {"rpt db prune --results 7d --jobs 90d"},
	"db migrate":       {"rpt db migrate   # once per version, as the admin: RPT_QUEUE='mysql://rpt_admin:SECRET@reports31:30031/rpt'"},
	"db status":        {"rpt db status -o json"},
	"demo":             {"rpt demo load"},
	"demo load":        {"rpt demo load --scale 2 --periods 13", "rpt demo load --into mysql://root@127.0.0.1:3306/demo", "rpt demo load --shape plex --into mysql://root@127.0.0.1:3306/plex   # a database standing in for Plex, for rpt etl"},
	"etl":              {"rpt etl list", "rpt etl run accounting-ytd   # and everything it depends on, in order"},
	"etl list":         {"rpt etl list -o json"},
	"etl show":         {"rpt etl show plex-balances"},
	"etl run":          {"rpt etl run plex-balances --only --from 202601 --to 202603", "rpt etl run plex-accounts --force   # past the shrink guard", "rpt etl run plex-workcenter-log --reconcile   # also delete rows Plex no longer has"},
	"etl submit":       {"rpt etl submit plex-balances --wait", "id=$(rpt etl submit plex-balances --from 202601 --to 202603)", "rpt etl submit accounting-ytd --pipeline --wait -o table"},
	"etl verify":       {"rpt etl verify plex-balances plex-accounts   # rows and sums per PCN, source against warehouse"},
	"etl status":       {"rpt etl status", "rpt etl status -o json | jq '.[] | {name, age_seconds}'"},
	"tokens":           {"rpt tokens create ci --role submitter", "rpt tokens list"},
	"schedules":        {"rpt schedules add weekly-tb --cron '10 19 * * 1' --report trial-balance --deliver mailto:accounting@example.com", "rpt schedules list"},
	"schedules list":   {"rpt schedules list", "rpt schedules list -o json"},
	"schedules show":   {"rpt schedules show weekly-tb -o json"},
	"schedules add":    {"rpt schedules add weekly-tb --cron '10 19 * * 1' --timezone America/Indiana/Indianapolis --report trial-balance --deliver mailto:accounting@example.com --missed once"},
	"schedules update": {"rpt schedules update weekly-tb --cron '10 18 * * 1'"},
	"schedules rm":     {"rpt schedules rm weekly-tb"},
	"schedules hold":   {"rpt schedules hold weekly-tb   # stops firing until resumed"},
	"schedules resume": {"rpt schedules resume weekly-tb"},
	"cron render":      {"rpt cron render > schedules.crontab && rpt cron lint schedules.crontab"},
	"tokens create":    {"rpt tokens create ci --role submitter"},
	"tokens list":      {"rpt tokens list -o json"},
	"tokens revoke":    {"rpt tokens revoke ci"},
	"api":              {"rpt api --listen 127.0.0.1:8080"},
	"cron":             {"rpt cron lint /etc/cron.d/rpt", "rpt cron next /etc/cron.d/rpt"},
	"cron run":         {"rpt cron run crontab/examples/reports.crontab   # in a container or on a host without cron"},
	"cron lint":        {"rpt cron lint crontab/examples/reports.crontab"},
	"cron next":        {"rpt cron next -n 5 crontab/examples/reports.crontab"},
	"version":          {"rpt version"},
	"completion":       {"source <(rpt completion bash)", "rpt completion zsh > \"${fpath[1]}/_rpt\"", "rpt completion fish > ~/.config/fish/completions/rpt.fish"},
}

// addExamples appends each command's examples to its help description.
func addExamples(cmds []*ucli.Command, path string) {
	for _, c := range cmds {
		name := strings.TrimSpace(path + " " + c.Name)
		if ex := examples[name]; len(ex) > 0 {
			text := "Examples:\n   " + strings.Join(ex, "\n   ")
			if c.Description != "" {
				text = c.Description + "\n\n   " + text
			}
			c.Description = text
		}
		addExamples(c.Subcommands, name)
	}
}
