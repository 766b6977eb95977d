package zendeskapp

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"image/png"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestShippedManifestIsValid(t *testing.T) {
	m, err := ParseManifest(manifestJSON)
	require.NoError(t, err)
	assert.True(t, m.SignedURLs)
	assert.Equal(t, "2.0", m.FrameworkVersion)
	assert.Contains(t, m.Location["support"], "top_bar")
}

func TestManifestMistakes(t *testing.T) {
	for name, src := range map[string]string{
		"no signed urls": `{"name":"x","author":{"name":"a","email":"a@b"},"defaultLocale":"en","version":"1","frameworkVersion":"2.0","location":{"support":{"top_bar":{"url":"https://x/"}}}}`,
		"http url":       `{"name":"x","author":{"name":"a","email":"a@b"},"defaultLocale":"en","version":"1","frameworkVersion":"2.0","signedUrls":true,"location":{"support":{"top_bar":{"url":"http://x/"}}}}`,
		"bad location":   `{"name":"x","author":{"name":"a","email":"a@b"},"defaultLocale":"en","version":"1","frameworkVersion":"2.0","signedUrls":true,"location":{"support":{"side_thing":{"url":"https://x/"}}}}`,
		"old framework":  `{"name":"x","author":{"name":"a","email":"a@b"},"defaultLocale":"en","version":"1","frameworkVersion":"1.0","signedUrls":true,"location":{"support":{"top_bar":{"url":"https://x/"}}}}`,
		"no author":      `{"name":"x","defaultLocale":"en","version":"1","frameworkVersion":"2.0","signedUrls":true,"location":{"support":{"top_bar":{"url":"https://x/"}}}}`,
		"not json":       `{`,
	} {
		_, err := ParseManifest([]byte(src))
		assert.Error(t, err, name)
	}
}

func TestPackage(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, Package(&buf, "https://cti.acme.example/panel/"))
	zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	require.NoError(t, err)
	files := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		require.NoError(t, err)
		files[f.Name], _ = io.ReadAll(rc)
		rc.Close()
	}
	require.Contains(t, files, "manifest.json")
	m, err := ParseManifest(files["manifest.json"])
	require.NoError(t, err)
	assert.Equal(t, "https://cti.acme.example/panel/", m.Location["support"]["top_bar"].URL)
	var tr map[string]map[string]string
	require.NoError(t, json.Unmarshal(files["translations/en.json"], &tr))
	assert.NotEmpty(t, tr["app"]["name"])
	for name, size := range map[string]int{"assets/logo.png": 320, "assets/logo-small.png": 128} {
		img, err := png.Decode(bytes.NewReader(files[name]))
		require.NoError(t, err, name)
		assert.Equal(t, size, img.Bounds().Dx(), name)
		assert.Equal(t, size, img.Bounds().Dy(), name)
	}
	assert.Error(t, Package(io.Discard, "http://insecure/panel/"))
}
