package watcher

import (
	"mailtap/record"
	"time"
)

// State is the state of one mailbox session (design.md §6).
type State string

const (
	StateConnecting   State = "connecting"
	StateSyncing      State = "syncing"
	StateIdle         State = "idle"    // IDLE (push)
	StatePolling      State = "polling" // STATUS or NOOP every poll_interval
	StateNotify       State = "notify"  // NOTIFY on the account's shared connection (push)
	StatePaused       State = "paused"
	StateReconnecting State = "reconnecting"
	StateAuthFailed   State = "auth_failed"
	StateError        State = "error"
	StateStopped      State = "stopped"
)

// AllStates lists every State, for metrics gauges and UIs.
var AllStates = []State{StateConnecting, StateSyncing, StateIdle, StateNotify, StatePolling,
	StatePaused, StateReconnecting, StateAuthFailed, StateError, StateStopped}

// MailboxID names one watched mailbox as "account/mailbox".
type MailboxID struct {
	Account string
	Mailbox string
}

func (id MailboxID) String() string { return id.Account + "/" + id.Mailbox }

// Event is what the watcher publishes through the Hub: StateChanged,
// Captured or Dropped.
type Event interface{ isEvent() }

// StateChanged reports a session entering a new state.
type StateChanged struct {
	Mailbox   MailboxID
	State     State
	Err       string    // last error, already free of secrets; "" if none
	NextRetry time.Time // when reconnecting/auth_failed/error: next attempt
	At        time.Time
}

// Captured reports a record that is durable on disk.
type Captured struct {
	Mailbox MailboxID
	Summary record.Summary
	At      time.Time
}

// Dropped tells a slow subscriber that N older events were discarded for it.
type Dropped struct{ N int }

func (StateChanged) isEvent() {}
func (Captured) isEvent()     {}
func (Dropped) isEvent()      {}

// MailboxStatus is a snapshot of one session, for status pages and UIs.
type MailboxStatus struct {
	Mailbox     MailboxID
	State       State
	Err         string
	NextRetry   time.Time
	Paused      bool
	Captured    int64     // records written this run
	Malformed   int64     // of those, records with parse_errors (still written whole)
	Errors      int64     // failed connection attempts this run: network, login, password source, disk
	LastCapture time.Time // zero if none this run
	UIDValidity uint32
	LastUID     uint32    // checkpoint
	Since       time.Time // when State was entered
	Heartbeat   time.Time // last time the session loop made progress or waited normally
	// LastServerContact is when the server last sent anything on this
	// mailbox's connection; zero if never this run.
	LastServerContact time.Time
	// Warning is the latest sign that the server's word could not be
	// trusted (a catch-up query that missed mail, UIDNEXT going
	// backwards), with when it was seen; "" if none this run.
	Warning   string
	WarningAt time.Time
}

// Controller is what UIs (TUI, status page) use to steer the watcher. An
// empty id means every mailbox.
type Controller interface {
	Pause(id string) error
	Resume(id string) error
	Reconnect(id string) error
	Status() []MailboxStatus
	Subscribe(buffer int) *Subscription
}
