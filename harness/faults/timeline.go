package faults

import (
	"errors"
	"fmt"
	"sort"
	"time"
)

// Event is what happened to one fault step. Its effect window, Start..End,
// is when the environment was broken because of it: for kill with for: 5s
// that is from the kill until the restarted service answered its probe
// again, not just the instant of the kill.
type Event struct {
	// Step is the index in the scenario's faults list.
	Step    int    `json:"step"`
	Name    string `json:"name,omitempty"`
	Service string `json:"service"`
	Action  string `json:"action"`
	// Link is "service:port" for latency and drop.
	Link string `json:"link,omitempty"`
	// Fired is false when the run ended before the step's trigger.
	Fired bool `json:"fired"`
	// Start is when the action began, Done when it returned (a start
	// returns once the service is ready).
	Start time.Time `json:"start,omitzero"`
	Done  time.Time `json:"done,omitzero"`
	// End closes the effect window; zero while the effect lasts (a kill
	// that nothing restarted, a pause cut short by the end of the run).
	End time.Time `json:"end,omitzero"`
	// EndedBy says what ended the effect: "start", "unpause", "heal" (the
	// undo of for:), "faults[3]" (a later step), or "restore".
	EndedBy string `json:"ended_by,omitempty"`
	// Err is the action's failure; UndoErr the failure of what was to end it.
	Err     string `json:"error,omitempty"`
	UndoErr string `json:"undo_error,omitempty"`
	// Interrupted marks an action or undo cut short because the run ended
	// (its ctx was cancelled): not a failure of the environment, so Err
	// leaves it out; Restore finishes what it left open.
	Interrupted bool `json:"interrupted,omitempty"`
}

// Open reports whether the event's effect still lasts.
func (e Event) Open() bool { return e.Fired && e.End.IsZero() }

// Timeline is the record of a faults run, in plan order.
type Timeline []Event

// Window is one interval during which the environment was deliberately
// broken. To is zero for an effect that had not ended.
type Window struct {
	Step    int       `json:"step"`
	Service string    `json:"service"`
	Action  string    `json:"action"`
	From    time.Time `json:"from"`
	To      time.Time `json:"to,omitzero"`
}

// Contains reports whether t falls in the window, the window's end pushed
// out by grace (the time a system may take to recover after the fault is
// lifted, e.g. "error rate back to 0 within 2 s").
func (w Window) Contains(t time.Time, grace time.Duration) bool {
	if t.Before(w.From) {
		return false
	}
	return w.To.IsZero() || !t.After(w.To.Add(grace))
}

// Windows lists the effect windows of the steps that fired, by start time.
func (tl Timeline) Windows() []Window {
	var ws []Window
	for _, e := range tl {
		if !e.Fired {
			continue
		}
		ws = append(ws, Window{Step: e.Step, Service: e.Service, Action: e.Action, From: e.Start, To: e.End})
	}
	sort.SliceStable(ws, func(i, j int) bool { return ws[i].From.Before(ws[j].From) })
	return ws
}

// Outside reports whether t lies outside every effect window — the
// instants an "outside faults" assertion counts.
func (tl Timeline) Outside(t time.Time) bool { return tl.OutsideGrace(t, 0) }

// OutsideGrace is Outside with each window extended by grace after its end.
func (tl Timeline) OutsideGrace(t time.Time, grace time.Duration) bool {
	for _, w := range tl.Windows() {
		if w.Contains(t, grace) {
			return false
		}
	}
	return true
}

// Err joins the failures of the steps and of their undos; nil when every
// step that fired did what it was asked. Steps that never fired, or were
// interrupted, are not failures: the load ended first.
func (tl Timeline) Err() error {
	var errs []error
	for _, e := range tl {
		if e.Interrupted {
			continue
		}
		if e.Err != "" {
			errs = append(errs, fmt.Errorf("faults[%d] %s %s: %s", e.Step, e.Action, e.Service, e.Err))
		}
		if e.UndoErr != "" {
			errs = append(errs, fmt.Errorf("faults[%d] %s %s: undo: %s", e.Step, e.Action, e.Service, e.UndoErr))
		}
	}
	return errors.Join(errs...)
}
