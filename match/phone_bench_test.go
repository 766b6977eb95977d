package match_test

import (
	"fmt"
	"testing"

	"github.com/cxplay/ctikit/match"
)

// BenchmarkNormalizeNew measures Normalize on numbers it has not seen (a
// new caller: libphonenumber's parse, validity and region lookup): a
// valid US number, a possible but invalid one (+1 200: an unassigned
// area code, tried against every NANP region), and a UK one.
//
//	go test ./match -run '^$' -bench NormalizeNew
func BenchmarkNormalizeNew(b *testing.B) {
	for _, c := range []struct{ name, f string }{
		{"us-valid", "tel:+1415%07d"},
		{"us-invalid", "tel:+1200%07d"},
		{"gb", "tel:+4420%08d"},
	} {
		b.Run(c.name, func(b *testing.B) {
			n, err := match.NewNormalizer("US")
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if n.Normalize(fmt.Sprintf(c.f, 5550000+i)) == "" {
					b.Fatal("no number")
				}
			}
		})
	}
}
