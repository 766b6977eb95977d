package main

import (
	"slices"
	"strings"
	"testing"
)

func TestParseCPUs(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []int
	}{
		{"1", []int{1}},
		{"0-3", []int{0, 1, 2, 3}},
		{"0,2-3", []int{0, 2, 3}},
		{" 2 , 0-1 ,1", []int{2, 0, 1}},
	} {
		got, err := parseCPUs(c.in)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("parseCPUs(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
		if again, err := parseCPUs(formatCPUs(got)); err != nil || !slices.Equal(again, got) {
			t.Errorf("parseCPUs(formatCPUs(%v)) = %v, %v", got, again, err)
		}
	}
	for _, in := range []string{"", "a", "-1", "3-1", "1-", "0,,1", "1024", "0-5000"} {
		if _, err := parseCPUs(in); err == nil || !strings.Contains(err.Error(), "CPU list") {
			t.Errorf("parseCPUs(%q): error %v, want a CPU list error", in, err)
		}
	}
}

func TestCheckEmulatorCPUs(t *testing.T) {
	c := config{client: "ctikit", emulators: "inproc", emulatorCPUs: "1"}
	if err := c.check(); err == nil {
		t.Error("-emulators-cpus with -emulators inproc accepted")
	}
	c.emulators = "process"
	if err := c.check(); err != nil {
		t.Errorf("-emulators-cpus 1: %v", err)
	}
	c.emulatorCPUs = "x"
	if err := c.check(); err == nil {
		t.Error("-emulators-cpus x accepted")
	}
}
