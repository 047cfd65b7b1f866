// Package didyoumean suggests the known word closest to a misspelt one, for error
// messages of definitions and config files ("did you mean `sql`?").
package didyoumean

import "fmt"

// Suggest returns ` (did you mean "x"?)`-style advice for a misspelt word: the closest
// of known when it is within a small edit distance, else "". Short words need a closer
// match, so "ab" does not suggest "sql".
func Suggest(word string, known []string) string {
	best, bestDist := "", -1
	for _, k := range known {
		d := levenshtein(word, k)
		if bestDist < 0 || d < bestDist {
			best, bestDist = k, d
		}
	}
	limit := 2
	if len([]rune(word)) <= 4 {
		limit = 1
	}
	if best == "" || bestDist == 0 || bestDist > limit {
		return ""
	}
	return fmt.Sprintf("did you mean `%s`?", best)
}

// levenshtein is the edit distance between a and b in runes, counting a swap of two
// neighbours as one edit (optimal string alignment). Inputs are keys and
// names, so the O(len(a)*len(b)) table is small; very long words are not compared.
func levenshtein(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	if len(ra) > 64 || len(rb) > 64 {
		return max(len(ra), len(rb))
	}
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1) // a swapped pair ("dns" for "dsn") is one edit
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}

// Append appends "; did you mean `x`?" to msg when word is close to one of known.
func Append(msg, word string, known []string) string {
	if s := Suggest(word, known); s != "" {
		return msg + "; " + s
	}
	return msg
}
