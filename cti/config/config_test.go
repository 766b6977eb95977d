package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/cti/config"
	"github.com/cxplay/ctikit/cti/ctitest"
	"github.com/cxplay/ctikit/syncmap"
)

func env(m map[string]string) config.Option {
	return config.WithLookupEnv(func(k string) (string, bool) { v, ok := m[k]; return v, ok })
}

func TestLoadGood(t *testing.T) {
	cfg, err := config.Load("testdata/good.yaml", env(map[string]string{"AGENT_USER_ID": "6b1e0e4e-1b2c-4d5e-8f90-a1b2c3d4e5f6"}))
	require.NoError(t, err)
	rs := cfg.Rules
	assert.Equal(t, []string{"6b1e0e4e-1b2c-4d5e-8f90-a1b2c3d4e5f6"}, rs.Subscribe.Users, "${ENV} expanded")
	require.Len(t, rs.Rules, 3)

	v := rs.Rules[0]
	assert.Equal(t, "support-voice", v.Name)
	assert.Equal(t, []string{"voice", "callback"}, v.When.Media)
	assert.Equal(t, cti.Inbound, v.When.Direction)
	assert.Equal(t, []cti.IdentifySpec{
		{Kind: cti.IdentifyPhone}, {Kind: cti.IdentifyEmail},
		{Kind: cti.IdentifyAttribute, Attribute: "AccountNumber", Target: "external_id"},
	}, v.Identify)
	assert.Equal(t, cti.PopupUser, v.Popup)
	assert.True(t, v.IdentifyEarly)
	assert.Equal(t, cti.NoMatchCreateUserAndTicket, v.NoMatch)
	assert.Equal(t, map[string]string{"360000000001": "{{.CallDuration}}", "360000000002": `{{.Attr "AccountNumber"}}`}, v.Sync.Fields)
	assert.Equal(t, []string{"genesys", "voice"}, v.Sync.Tags)

	m := rs.Rules[1]
	assert.Equal(t, []string{"message"}, m.When.Media, "a single value is a list of one")
	assert.Equal(t, cti.PopupTicketLatestOpen, m.Popup)
	assert.Equal(t, cti.SyncLatestOpen, m.Sync.Ticket)
	assert.Equal(t, cti.CommentPublic, m.Sync.Comment)
	assert.Contains(t, m.Sync.Template, "{{truncate 2000 .Transcript}}")

	o := rs.Rules[2]
	assert.Equal(t, []string{"Renewals"}, o.When.Campaigns, "${NAME:-default} takes the default when unset")
	assert.Equal(t, cti.PopOnAlerting, o.PopOn, "defaults applied")
	assert.False(t, o.IdentifyEarly)
	assert.Equal(t, cti.MultipleChoose, o.Multiple)
	assert.Equal(t, cti.NoMatchNothing, o.NoMatch)
	assert.Equal(t, cti.SyncPopped, o.Sync.Ticket)
	assert.Equal(t, cti.CommentInternal, o.Sync.Comment)

	assert.Equal(t, "Europe/Paris", cfg.Time.Zone)
	f := cfg.Time.Format()
	require.NotNil(t, f.Location)
	assert.Equal(t, "24/11/2026 10:00", f.Time(time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)))
	assert.Equal(t, map[string]string{"genesys.agent@example.com": "zendesk.agent@example.com"}, cfg.Agents)

	// The loaded rules route conversations as written.
	voice := ctitest.NewConversation("c", cti.MediaVoice).Queue("0f9c1f3a-5d2e-4a8b-9c61-2b7e3f4a5d60", "Support").Snapshot()
	assert.Equal(t, "support-voice", rs.Match(voice, nil).Name)
	wa := ctitest.NewMessage("c", cti.ChannelWhatsApp).Snapshot()
	assert.Equal(t, "messaging", rs.Match(wa, nil).Name)
	out := ctitest.NewConversation("c", cti.MediaVoice).Direction(cti.Outbound).Campaign("camp-1", "renewals").Snapshot()
	assert.Equal(t, "outbound-campaigns", rs.Match(out, nil).Name, "campaign names compare case-insensitively")
	email := ctitest.NewConversation("c", cti.MediaEmail).Snapshot()
	assert.Nil(t, rs.Match(email, nil))
}

func TestLoadMinimalAppliesDefaults(t *testing.T) {
	cfg, err := config.Load("testdata/minimal.yaml")
	require.NoError(t, err)
	r := cfg.Rules.Rules[0]
	assert.Equal(t, cti.PopupUser, r.Popup)
	assert.Equal(t, cti.PopOnAlerting, r.PopOn)
	assert.Equal(t, syncmap.Format{}, cfg.Time.Format())
}

func TestLoadBad(t *testing.T) {
	cases := map[string][]string{
		"unknown-media.yaml":      {"line 4", "rules[0].when.media[1]", `"fax"`, "unknown media", "voice, callback"},
		"unknown-popup.yaml":      {"line 5", "rules[0].popup", `"ticket:oldest"`, "none, user, ticket:latest_open or ticket:new"},
		"never-matches.yaml":      {"line 5", "rules[1]", "can never match", "rules[0] (catch-all)"},
		"bad-template.yaml":       {"line 6", "rules[0].sync.fields.360000000001", "template:", "unclosed action"},
		"unknown-datapoint.yaml":  {"rules[0].sync.fields.360000000001", "unknown data point .CallDurration", "CallDuration"},
		"unknown-key.yaml":        {"line 5", "rules[0].popop", "unknown key", `did you mean "popup"?`},
		"missing-env.yaml":        {"line 1", "subscribe.queues[0]", "SUPPORT_QUEUE_ID is not set"},
		"bad-identify.yaml":       {"line 4", "rules[0].identify[1]", "attribute:NAME=TARGET"},
		"inbound-campaign.yaml":   {"rules[0].when", "can never match", "outbound"},
		"unsubscribed-queue.yaml": {"rules[0].when.queues[0]", "can never match", "subscribe.queues"},
		"bad-field-id.yaml":       {"rules[0].sync.fields", `"call duration"`, "field id is a number"},
		"bad-zone.yaml":           {"time.zone", "Mars/Olympus", "IANA"},
		"wrong-shape.yaml":        {"line 3", "rules", "want a list, got a mapping"},
		"not-yaml.yaml":           {"not valid YAML"},
		"empty.yaml":              {"empty"},
		"nothing-subscribed.yaml": {"subscribe", "at least one queue"},
		"duplicate-name.yaml":     {"rules[1].name", "unique"},
		"bad-direction.yaml":      {"rules[0].when.direction", "sideways", "inbound, outbound"},
	}
	files, err := filepath.Glob("testdata/bad/*.yaml")
	require.NoError(t, err)
	require.Len(t, files, len(cases), "every bad file has expectations")
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			_, err := config.Load(f, env(nil))
			require.Error(t, err)
			assert.ErrorIs(t, err, cti.ErrInvalid)
			for _, want := range cases[name] {
				assert.Contains(t, err.Error(), want)
			}
			assert.Contains(t, err.Error(), f, "the message names the file")
		})
	}
}

func TestLoadReportsEveryMistakeInFileOrder(t *testing.T) {
	src := `
subscribe: {queues: [q1]}
rules:
  - name: a
    when: {media: [fax]}
    identify: [phone]
    popup: sometimes
  - name: b
    identify: [phone]
    sync: {comment: loud}
`
	_, err := config.Parse([]byte(src))
	require.Error(t, err)
	lines := strings.Split(err.Error(), "\n")
	require.Len(t, lines, 3)
	assert.True(t, strings.HasPrefix(lines[0], "line 5: rules[0].when.media[0]"), lines[0])
	assert.True(t, strings.HasPrefix(lines[1], "line 7: rules[0].popup"), lines[1])
	assert.True(t, strings.HasPrefix(lines[2], "line 10: rules[1].sync.comment"), lines[2])
	var ce *cti.ConfigError
	require.True(t, errors.As(err, &ce))
	assert.Equal(t, 5, ce.Line)
}

func TestLoadMissingFile(t *testing.T) {
	_, err := config.Load(filepath.Join(t.TempDir(), "nope.yaml"))
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestCustomTemplateCheck(t *testing.T) {
	src := `
subscribe: {queues: [q1]}
rules:
  - name: a
    identify: [phone]
    sync: {fields: {"1": "<% duration %>"}}
`
	_, err := config.Parse([]byte(src), config.WithTemplateCheck(func(s string) error {
		if !strings.HasPrefix(s, "<%") {
			return errors.New("want <% ... %>")
		}
		return nil
	}))
	require.NoError(t, err)
}

func TestEnvInPlainValueIsReadByContent(t *testing.T) {
	src := `
subscribe:
  queues: ${QUEUE}
rules:
  - name: ${NAME}
    identify: [phone]
    identify_early: ${EARLY}
`
	for _, early := range []string{"true", "false"} {
		cfg, err := config.Parse([]byte(src), env(map[string]string{"QUEUE": "007", "NAME": "true", "EARLY": early}))
		require.NoError(t, err, "EARLY=%s", early)
		assert.Equal(t, early == "true", cfg.Rules.Rules[0].IdentifyEarly, "${EARLY} is a boolean")
		assert.Equal(t, []string{"007"}, cfg.Rules.Subscribe.Queues, "a text field keeps the text as written")
		assert.Equal(t, "true", cfg.Rules.Rules[0].Name)
	}

	cfg, err := config.Parse([]byte(strings.Replace(src, "${EARLY}", "${EARLY:-true}", 1)), env(map[string]string{"QUEUE": "q1", "NAME": "a"}))
	require.NoError(t, err)
	assert.True(t, cfg.Rules.Rules[0].IdentifyEarly, "the default is read by content too")
}

func TestEnvInQuotedValueStaysText(t *testing.T) {
	src := `
subscribe: {queues: ["${QUEUE}"]}
rules:
  - name: a
    identify: [phone]
    identify_early: "${EARLY}"
`
	_, err := config.Parse([]byte(src), env(map[string]string{"QUEUE": "q1", "EARLY": "true"}))
	require.Error(t, err, `"${EARLY}" is the text "true", as "true" is`)
	assert.ErrorIs(t, err, cti.ErrInvalid)
	assert.Equal(t, `line 6: rules[0].identify_early: "true": want true or false, without quotes`, err.Error())

	_, err = config.Parse([]byte(strings.Replace(src, `"${EARLY}"`, `!!str ${EARLY}`, 1)), env(map[string]string{"QUEUE": "q1", "EARLY": "true"}))
	require.Error(t, err, "an explicit tag is kept")
	assert.Equal(t, `line 6: rules[0].identify_early: "true": want true or false, without the tag !!str`, err.Error())

	cfg, err := config.Parse([]byte(strings.Replace(src, `identify_early: "${EARLY}"`, `subject: "${EARLY}"`, 1)),
		env(map[string]string{"QUEUE": "null", "EARLY": "true"}))
	require.NoError(t, err)
	assert.Equal(t, []string{"null"}, cfg.Rules.Subscribe.Queues, "a quoted value is never no value")
	assert.Equal(t, "true", cfg.Rules.Rules[0].Subject)
}

func TestWrongTypeNamesKeyPath(t *testing.T) {
	cases := map[string]string{
		"maybe":   `line 6: rules[0].identify_early: "maybe": want true or false`,
		"1":       `line 6: rules[0].identify_early: "1": want true or false`,
		`"true"`:  `line 6: rules[0].identify_early: "true": want true or false, without quotes`,
		"${MODE}": `line 6: rules[0].identify_early: "sometimes": want true or false`,
	}
	for value, want := range cases {
		t.Run(value, func(t *testing.T) {
			src := `
subscribe: {queues: [q1]}
rules:
  - name: a
    identify: [phone]
    identify_early: ` + value + `
`
			_, err := config.Parse([]byte(src), env(map[string]string{"MODE": "sometimes"}))
			require.Error(t, err)
			assert.ErrorIs(t, err, cti.ErrInvalid)
			assert.Equal(t, want, err.Error())
		})
	}

	_, err := config.Parse([]byte(`
subscribe: {queues: [q1]}
rules:
  - name: !!int a
    identify: [phone]
`))
	require.Error(t, err)
	assert.Equal(t, `line 4: rules[0].name: "a": the value does not fit its tag !!int: remove the tag`, err.Error())
}

func TestDuplicateKeyNamesKeyPath(t *testing.T) {
	src := `
subscribe: {queues: [q1]}
rules:
  - name: a
    identify: [phone]
    popup: user
    popup: none
    sync: {tags: [x], tags: [y]}
agents:
  ${AGENT}: z1@example.com
  u1@example.com: z2@example.com
rules: []
`
	_, err := config.Parse([]byte(src), env(map[string]string{"AGENT": "u1@example.com"}))
	require.Error(t, err)
	assert.ErrorIs(t, err, cti.ErrInvalid)
	assert.Equal(t, strings.Join([]string{
		`line 7: rules[0].popup: popup is given twice in rules[0] (lines 6 and 7): keep one`,
		`line 8: rules[0].sync.tags: tags is given twice in rules[0].sync (lines 8 and 8): keep one`,
		`line 11: agents.u1@example.com: u1@example.com is given twice in agents (lines 10 and 11): keep one`,
		`line 12: rules: rules is given twice at the top level (lines 3 and 12): keep one`,
	}, "\n"), err.Error())
}

func TestSecondDocumentIsRejected(t *testing.T) {
	one := `
subscribe: {queues: [q1]}
rules:
  - name: a
    identify: [phone]
`
	_, err := config.Parse([]byte(one + "---\nrules:\n  - name: b\n    popup: bogus\n"))
	require.Error(t, err, "the second document would be ignored")
	assert.ErrorIs(t, err, cti.ErrInvalid)
	assert.Contains(t, err.Error(), "line 6: (file): a second YAML document starts here")
	assert.Contains(t, err.Error(), "remove the --- line")

	_, err = config.Parse([]byte(one + "---\n- [\n"))
	require.Error(t, err, "a broken second document is not ignored either")
	assert.Contains(t, err.Error(), "(file): not valid YAML")

	_, err = config.Parse([]byte(one + "---\n# nothing here\n"))
	assert.NoError(t, err, "a trailing --- with nothing after it ignores nothing")
}

func TestEmptyListItemIsRejected(t *testing.T) {
	cfg, err := config.Parse([]byte(`
subscribe: {queues: [q1]}
rules:
  - name: a
    identify: [phone]
    when: {media: [~], queues: [~]}
`))
	require.Error(t, err, "the empty items would be dropped: the rule would match any media, any queue")
	require.Nil(t, cfg)
	assert.Contains(t, err.Error(), `line 6: rules[0].when.media[0]: "~": empty item`)
	assert.Contains(t, err.Error(), `line 6: rules[0].when.queues[0]: "~": empty item`)

	src := `
subscribe:
  queues: ${QUEUE:-}
rules:
  - name: a
    when: {media: [~], queues: [q1, null]}
    identify:
      - phone
      -
agents:
  ~: z@example.com
`
	_, err = config.Parse([]byte(src), env(nil))
	require.Error(t, err)
	assert.ErrorIs(t, err, cti.ErrInvalid)
	assert.Equal(t, strings.Join([]string{
		`line 3: subscribe.queues[0]: empty item: write a value or remove the item (to mean any, leave the whole list empty)`,
		`line 6: rules[0].when.media[0]: "~": empty item: write a value or remove the item (to mean any, leave the whole list empty)`,
		`line 6: rules[0].when.queues[1]: "null": empty item: write a value or remove the item (to mean any, leave the whole list empty)`,
		`line 9: rules[0].identify[1]: empty item: write a value or remove the item (to mean any, leave the whole list empty)`,
		`line 11: agents.~: "~": empty key: write a key or remove the entry`,
	}, "\n"), err.Error())
}
