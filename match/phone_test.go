package match_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/match"
)

func mustNormalizer(t testing.TB, region string) *match.Normalizer {
	t.Helper()
	n, err := match.NewNormalizer(region)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestNormalize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		region, in, want string
	}{
		{"US", "+14155551212", "+14155551212"},
		{"US", "tel:+14155551212", "+14155551212"},
		{"US", "TEL:+1-415-555-1212;ext=123", "+14155551212"},
		{"US", "tel:4155551212;phone-context=+1", "+14155551212"},
		{"US", "sip:+14155551212@10.0.0.1:5060;user=phone", "+14155551212"},
		{"US", "sips:4155551212@carrier.example.com", "+14155551212"},
		{"US", "sip:%2B14155551212@host", "+14155551212"},
		{"US", `"Jane Doe" <sip:+14155551212@host>`, "+14155551212"},
		{"US", "(415) 555-1212", "+14155551212"},
		{"US", "415.555.1212", "+14155551212"},
		{"US", "1 (415) 555-1212", "+14155551212"},
		{"US", "+1 415 555 1212 x123", "+14155551212"},
		{"US", "+1 415 555 1212 ext. 123", "+14155551212"},
		{"US", "011 33 6 12 34 56 78", "+33612345678"},
		{"US", "33612345678", "+33612345678"}, // WhatsApp sender without +
		{"US", "4915112345678", "+4915112345678"},
		{"US", "4155551212", "+14155551212"},
		// A home number without its plus where the country dials a
		// national prefix: the international reading, though the
		// national one (a Leer landline, 0491...) is valid too.
		{"DE", "4917612345678", "+4917612345678"},
		{"DE", "4915112345678", "+4915112345678"},
		{"DE", "491601234567", "+491601234567"},
		{"DE", "015112345678", "+4915112345678"},
		{"DE", "030 1234567", "+49301234567"},
		{"GB", "447911123456", "+447911123456"},
		{"FR", "06 12 34 56 78", "+33612345678"},
		{"FR", "0033612345678", "+33612345678"},
		{"FR", "+44 20 7946 0958", "+442079460958"},
		{"GB", "020 7946 0958", "+442079460958"},
		{"", "+442079460958", "+442079460958"},
		{"", "442079460958", "+442079460958"},
		{"", "020 7946 0958", "020 7946 0958"}, // no region: not parseable, cleaned input
		{"US", "72345", "72345"},               // SMS short code
		{"US", "sip:alice@example.com", "alice"},
		{"US", "anonymous", ""},
		{"US", "sip:anonymous@anonymous.invalid", ""},
		{"US", "Restricted", ""},
		{"US", "  ", ""},
		{"US", "", ""},
		{"US", strings.Repeat("1", match.MaxPhoneInput+1), ""},
	}
	for _, tt := range tests {
		n := mustNormalizer(t, tt.region)
		if got := n.Normalize(tt.in); got != tt.want {
			t.Errorf("NewNormalizer(%q).Normalize(%q) = %q, want %q", tt.region, tt.in, got, tt.want)
		}
	}
}

func TestParseDetails(t *testing.T) {
	t.Parallel()
	n := mustNormalizer(t, "us")
	p, err := n.Parse("tel:+1-415-555-1212;ext=123")
	if err != nil {
		t.Fatal(err)
	}
	if p.E164 != "+14155551212" || p.Extension != "123" || p.Region != "US" || p.CountryCode != 1 || !p.Valid {
		t.Errorf("Parse = %+v", p)
	}
	if _, err := n.Parse("anonymous"); !errors.Is(err, match.ErrWithheld) {
		t.Errorf("Parse(anonymous) error = %v, want ErrWithheld", err)
	}
	if _, err := n.Parse("hello"); !errors.Is(err, cti.ErrInvalid) {
		t.Errorf("Parse(hello) error = %v, want cti.ErrInvalid", err)
	}
	if _, err := n.Parse(strings.Repeat("9", 10000)); !errors.Is(err, cti.ErrInvalid) {
		t.Errorf("Parse(10000 digits) error = %v, want cti.ErrInvalid", err)
	}
}

func TestNewNormalizerBadRegion(t *testing.T) {
	t.Parallel()
	_, err := match.NewNormalizer("XX")
	if !errors.Is(err, cti.ErrInvalid) || !strings.Contains(err.Error(), `"XX"`) {
		t.Errorf("NewNormalizer(XX) error = %v, want ErrInvalid naming the region", err)
	}
}

func TestFormats(t *testing.T) {
	t.Parallel()
	tests := []struct {
		region, in string
		want       []string
	}{
		{"US", "+14155551212", []string{
			"+14155551212", "+1 415-555-1212", "(415) 555-1212", "4155551212", "14155551212",
			"+1 (415) 555-1212", "415-555-1212", "415.555.1212", "+1 415 555 1212", "+1-415-555-1212",
			"1-415-555-1212", "1 (415) 555-1212",
		}},
		{"FR", "06 12 34 56 78", []string{
			"+33612345678", "+33 6 12 34 56 78", "06 12 34 56 78", "0612345678", "33612345678",
			"+33 06 12 34 56 78", "06-12-34-56-78", "06.12.34.56.78", "+33-6-12-34-56-78", "+33 (0)6 12 34 56 78",
		}},
		{"GB", "+442079460958", []string{
			"+442079460958", "+44 20 7946 0958", "020 7946 0958", "02079460958", "442079460958",
			"+44 020 7946 0958", "020-7946-0958", "020.7946.0958", "+44-20-7946-0958", "+44 (0)20 7946 0958",
		}},
	}
	for _, tt := range tests {
		p, err := mustNormalizer(t, tt.region).Parse(tt.in)
		if err != nil {
			t.Fatal(err)
		}
		got := p.Formats()
		if strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("Formats(%q) =\n %q\nwant\n %q", tt.in, got, tt.want)
		}
	}
	if f := (match.Phone{}).Formats(); f != nil {
		t.Errorf("zero Phone Formats = %q, want nil", f)
	}
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{
		"+14155551212", "tel:+1-415-555-1212;ext=123", "sip:+1415@h", "(415) 555-1212", "anonymous",
		"tel:;phone-context=", "sip:@", "<>", "+", "++1", "0033612345678", "+1 415 555 1212 x",
	} {
		f.Add("US", s)
	}
	regions := []string{"", "US", "FR", "GB", "DE", "IN", "BR"}
	f.Fuzz(func(t *testing.T, region, s string) {
		r := regions[len(region)%len(regions)]
		n := mustNormalizer(t, r)
		out := n.Normalize(s)
		if len(s) <= match.MaxPhoneInput && len(out) > len(s)+32 {
			t.Errorf("Normalize(%q) = %q: longer than its input", s, out)
		}
		if !utf8.ValidString(out) {
			t.Errorf("Normalize(%q) = %q: not UTF-8", s, out)
		}
		p, err := n.Parse(s)
		if err == nil {
			if !strings.HasPrefix(p.E164, "+") || out != p.E164 {
				t.Errorf("Parse(%q).E164 = %q, Normalize = %q", s, p.E164, out)
			}
			// E.164 is a fixed point.
			if again := n.Normalize(p.E164); again != p.E164 {
				t.Errorf("Normalize(%q) = %q, want it unchanged", p.E164, again)
			}
			// What the normalizer remembers for the E.164 (without
			// parsing it) is what a parse of it gives.
			samePhone(t, p.E164, n, match.Unmemoized(n))
		}
		samePhone(t, s, n, match.Unmemoized(n))
	})
}

// samePhone fails t unless a and b parse s alike, formats included.
func samePhone(t *testing.T, s string, a, b *match.Normalizer) {
	t.Helper()
	pa, errA := a.Parse(s)
	pb, errB := b.Parse(s)
	fa, fb := pa.Formats(), pb.Formats()
	if f := pa.Formats(); len(f) > 0 {
		f[0] = "changed" // the caller's copy
	}
	if (errA == nil) != (errB == nil) || pa.E164 != pb.E164 || pa.Extension != pb.Extension || pa.Region != pb.Region ||
		pa.CountryCode != pb.CountryCode || pa.Valid != pb.Valid || pa.Input != pb.Input ||
		!slices.Equal(fa, fb) || !slices.Equal(pa.Formats(), fb) {
		t.Errorf("Parse(%q): remembered %+v %q, %v; parsed %+v %q, %v", s, pa, fa, errA, pb, fb, errB)
	}
}

func TestNormalizerMemory(t *testing.T) {
	n := mustNormalizer(t, "US")
	match.SetMemoSize(n, 4)
	for _, s := range []string{"(415) 555-1212", "tel:+1-415-555-1212;ext=123", "anonymous", "12", "+33 6 12 34 56 78"} {
		samePhone(t, s, n, match.Unmemoized(n)) // first parse
		samePhone(t, s, n, match.Unmemoized(n)) // remembered
	}
	// Bounded: two generations of 4.
	for i := range 20 {
		n.Parse(fmt.Sprintf("+1415555%04d", i))
	}
	if got := match.MemoLen(n); got > 8 {
		t.Errorf("remembers %d inputs, want at most 8", got)
	}
	// A changed copy does not use what was remembered for the original.
	p, _ := n.Parse("(415) 555-1212")
	p.Input = "415 555 1212"
	if f := p.Formats(); !slices.Contains(f, "415 555 1212") {
		t.Errorf("Formats of a changed copy = %q", f)
	}
}
