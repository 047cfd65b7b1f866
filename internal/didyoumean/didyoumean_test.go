package didyoumean

import "testing"

func TestSuggest(t *testing.T) {
	t.Parallel()
	known := []string{"name", "source", "sql", "dialects", "default", "period"}
	tests := []struct{ word, want string }{
		{"sqll", "sql"}, {"sq", "sql"}, {"soruce", "source"}, {"defualt", "default"}, {"perod", "period"},
		{"colour", ""}, {"ab", ""}, {"sql", ""}, {"", ""},
	}
	for _, tt := range tests {
		got := Suggest(tt.word, known)
		want := ""
		if tt.want != "" {
			want = "did you mean `" + tt.want + "`?"
		}
		if got != want {
			t.Errorf("Suggest(%q) = %q, want %q", tt.word, got, want)
		}
	}
}
