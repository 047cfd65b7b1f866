# testsummary.awk reads `go test -json` and prints what plain `go test` would (package
# results, the output of failing tests, build errors), then how many tests were skipped
# and why, grouped by the reason each test gave (t.Skip's message). POSIX awk.

# jstr returns the string value of "key" in one JSON line, unescaped enough to print.
function jstr(line, key,    i, s, out, c, n) {
	i = index(line, "\"" key "\":\"")
	if (i == 0) return ""
	s = substr(line, i + length(key) + 4)
	out = ""
	n = length(s)
	for (i = 1; i <= n; i++) {
		c = substr(s, i, 1)
		if (c == "\"") break
		if (c == "\\") {
			i++
			c = substr(s, i, 1)
			if (c == "n") c = "\n"
			else if (c == "t") c = "\t"
			else if (c == "r") c = ""
			else if (c == "u") { c = "?"; if (substr(s, i + 1, 4) == "003c") c = "<"; else if (substr(s, i + 1, 4) == "003e") c = ">"; else if (substr(s, i + 1, 4) == "0026") c = "&"; i += 4 }
		}
		out = out c
	}
	return out
}

{
	action = jstr($0, "Action")
	test = jstr($0, "Test")
	key = jstr($0, "Package") " " test
	if (action == "build-output" || (action == "output" && test == "")) {
		o = jstr($0, "Output")
		if (o != "PASS\n") printf "%s", o # plain go test prints only the "ok" line
		next
	}
	if (test == "") {
		# A package that fails without its tests ending (a panic, the -timeout): print
		# what its unfinished tests said, which holds the reason.
		if (action == "fail") {
			pkg = jstr($0, "Package") " "
			for (k in buf) if (index(k, pkg) == 1) { printf "%s", buf[k]; delete buf[k] }
		}
		next
	}
	if (action == "output") {
		o = jstr($0, "Output")
		if (o ~ /^=== (RUN|PAUSE|CONT|NAME)/) next # plain go test does not print these
		buf[key] = buf[key] o
		# The reason a test skips is its last "file.go:N: message" line.
		if (o ~ /^ +[^ ]+\.go:[0-9]+: /) { r = o; sub(/^ +[^ ]+\.go:[0-9]+: /, "", r); sub(/\n$/, "", r); reason[key] = r }
	} else if (action == "fail") {
		printf "%s", buf[key]
		delete buf[key]
	} else if (action == "skip") {
		r = (key in reason) ? reason[key] : "no reason given"
		if (!(r in skips)) order[++nr] = r
		skips[r]++
		total++
		delete buf[key]
	} else if (action == "pass") {
		delete buf[key]
		delete reason[key]
	}
}

END {
	if (total == 0) { print "no tests skipped"; exit }
	printf "%d test%s skipped:\n", total, (total == 1 ? "" : "s")
	for (i = 1; i <= nr; i++) printf "  %4d  %s\n", skips[order[i]], order[i]
}
