package syncmap

import (
	"testing"
)

// BenchmarkRenderDefault renders the default comment template of a kind
// over the sample data, as each sync does (text/template; the sync's
// share of CPU in figure 2's busy periods, BENCHMARKS.md).
//
//	go test ./syncmap -run '^$' -bench RenderDefault -benchmem
func BenchmarkRenderDefault(b *testing.B) {
	for _, kind := range []string{"voice", "email", "message"} {
		b.Run(kind, func(b *testing.B) {
			t, err := ParseFormat("comment."+kind, DefaultTemplate(kind), Format{})
			if err != nil {
				b.Fatal(err)
			}
			d := sample()
			b.ReportAllocs()
			for b.Loop() {
				if s, err := t.Render(d, Format{}); err != nil || s == "" {
					b.Fatal(s, err)
				}
			}
		})
	}
}
