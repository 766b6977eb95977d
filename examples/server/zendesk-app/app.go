// Package zendeskapp builds the Zendesk app package (ZAF 2.0) whose top bar
// iframe is the reference server's agent panel, and validates its manifest
// against the fields Zendesk documents (zcli apps:validate needs a live
// account, so the checks live here).
package zendeskapp

import (
	"archive/zip"
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/url"
	"strings"
)

//go:embed manifest.json
var manifestJSON []byte

//go:embed translations/en.json
var translationsEN []byte

// Manifest is the part of manifest.json ctikit sets and checks.
type Manifest struct {
	Name             string                         `json:"name"`
	Author           Author                         `json:"author"`
	DefaultLocale    string                         `json:"defaultLocale"`
	Private          bool                           `json:"private"`
	Location         map[string]map[string]Location `json:"location"`
	Version          string                         `json:"version"`
	FrameworkVersion string                         `json:"frameworkVersion"`
	SignedURLs       bool                           `json:"signedUrls"`
}

// Author is the manifest's author section.
type Author struct {
	Name  string `json:"name"`
	Email string `json:"email"`
	URL   string `json:"url,omitempty"`
}

// Location is one app location (product → location name → this).
type Location struct {
	URL      string         `json:"url"`
	Flexible bool           `json:"flexible,omitempty"`
	Size     map[string]any `json:"size,omitempty"`
}

var supportLocations = map[string]bool{
	"top_bar": true, "nav_bar": true, "ticket_sidebar": true, "new_ticket_sidebar": true,
	"user_sidebar": true, "organization_sidebar": true, "background": true, "ticket_editor": true,
}

// ParseManifest parses and validates a manifest.
func ParseManifest(b []byte) (*Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("manifest.json: %w", err)
	}
	var errs []error
	bad := func(f string, args ...any) { errs = append(errs, fmt.Errorf("manifest.json: "+f, args...)) }
	if m.Name == "" {
		bad("name is required")
	}
	if m.Author.Name == "" || m.Author.Email == "" || !strings.Contains(m.Author.Email, "@") {
		bad("author.name and a valid author.email are required")
	}
	if m.DefaultLocale == "" {
		bad("defaultLocale is required")
	}
	if m.FrameworkVersion != "2.0" {
		bad("frameworkVersion must be \"2.0\", got %q", m.FrameworkVersion)
	}
	if m.Version == "" {
		bad("version is required")
	}
	if !m.SignedURLs {
		bad("signedUrls must be true: the panel only trusts requests Zendesk signed")
	}
	sup, ok := m.Location["support"]
	if !ok || len(sup) == 0 {
		bad("location.support needs at least one location")
	}
	for name, l := range sup {
		if !supportLocations[name] {
			bad("location.support.%s is not a Zendesk Support location", name)
		}
		u, err := url.Parse(l.URL)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			bad("location.support.%s.url must be an absolute https URL (the panel), got %q", name, l.URL)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &m, nil
}

// Package writes the app package (a zip) for a panel served at panelURL.
func Package(w io.Writer, panelURL string) error {
	var raw map[string]any
	if err := json.Unmarshal(manifestJSON, &raw); err != nil {
		return err
	}
	loc := raw["location"].(map[string]any)["support"].(map[string]any)["top_bar"].(map[string]any)
	loc["url"] = panelURL
	manifest, err := json.MarshalIndent(raw, "", "  ")
	if err != nil {
		return err
	}
	if _, err := ParseManifest(manifest); err != nil {
		return err
	}
	var tr map[string]any
	if err := json.Unmarshal(translationsEN, &tr); err != nil {
		return fmt.Errorf("translations/en.json: %w", err)
	}
	zw := zip.NewWriter(w)
	files := []struct {
		name string
		body func() ([]byte, error)
	}{
		{"manifest.json", func() ([]byte, error) { return manifest, nil }},
		{"translations/en.json", func() ([]byte, error) { return translationsEN, nil }},
		{"assets/logo.png", func() ([]byte, error) { return logo(320) }},
		{"assets/logo-small.png", func() ([]byte, error) { return logo(128) }},
	}
	for _, f := range files {
		b, err := f.body()
		if err != nil {
			return err
		}
		fw, err := zw.Create(f.name)
		if err != nil {
			return err
		}
		if _, err := fw.Write(b); err != nil {
			return err
		}
	}
	return zw.Close()
}

// logo draws the app logo: a square the size Zendesk asks for (320 and 128).
func logo(size int) ([]byte, error) {
	img := image.NewRGBA(image.Rect(0, 0, size, size))
	bg := color.RGBA{0x1f, 0x73, 0xb7, 0xff}
	fg := color.RGBA{0xff, 0x45, 0x00, 0xff}
	for y := range size {
		for x := range size {
			c := bg
			dx, dy := x-size/2, y-size/2
			if r := size / 4; dx*dx+dy*dy < r*r {
				c = fg
			}
			img.Set(x, y, c)
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
