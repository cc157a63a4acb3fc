package watcher

import (
	"context"
	"fmt"
	"time"
)

// Waiting for new mail on a connection of its own: IDLE, or polling where
// the server has no IDLE.

// idleLoop waits in IDLE for new mail, leaving it every idle_refresh for a
// NOOP so a dead peer is found even when no mail comes.
func (s *session) idleLoop(ctx context.Context, cn *conn) error {
	refresh := s.watch.IdleRefresh.Duration
	timeout := s.watch.ResponseTimeout.Duration
	for {
		if err := s.takeRequest(); err != nil {
			return err
		}
		cn.dc.expect(timeout)
		idle, err := cn.c.Idle()
		if err != nil {
			return fmt.Errorf("idle: %w", err)
		}
		s.setState(StateIdle, nil, time.Time{})
		// Silence is normal now, until our own refresh.
		cn.dc.expect(refresh + timeout)
		reason, werr := s.waitIdle(ctx, cn, refresh)
		cn.dc.expect(timeout)
		cerr := idle.Close()
		if cerr == nil {
			cerr = idle.Wait()
		}
		if werr != nil {
			return werr
		}
		if cerr != nil {
			return fmt.Errorf("leave idle: %w (%w)", cerr, errConnectionLost)
		}
		if reason == "refresh" {
			if err := cn.c.Noop().Wait(); err != nil {
				return fmt.Errorf("noop: %w", err)
			}
		}
		if err := s.takeRequest(); err != nil {
			return err
		}
		// The server's word is checked, not trusted: a mailbox replaced
		// under us, or mail IDLE never announced, costs at most one
		// refresh. A push is checked too: Courier moves a session to a
		// recreated mailbox without a word and then pushes its mail, which
		// would otherwise be recorded under the old UIDVALIDITY. One
		// STATUS per push.
		if err := s.verifyMailbox(cn); err != nil {
			return err
		}
		s.setState(StateSyncing, nil, time.Time{})
		n, err := s.catchUp(ctx, cn)
		if err != nil {
			return err
		}
		switch {
		case reason == "mail":
			s.idlePush++
		case n > 0:
			s.idleUnreliable(n, reason)
		}
	}
}

func (s *session) waitIdle(ctx context.Context, cn *conn, refresh time.Duration) (string, error) {
	t := time.NewTimer(refresh)
	defer t.Stop()
	hb := time.NewTicker(heartbeatEvery)
	defer hb.Stop()
	for {
		s.beat()
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-cn.c.Closed():
			return "", errConnectionLost
		case <-s.newMail:
			return "mail", nil
		case <-s.emptied:
			return "emptied", nil
		case <-t.C:
			return "refresh", nil
		case <-s.wake:
			if err := s.takeRequest(); err != nil {
				return "", err
			}
		case <-hb.C:
		}
	}
}

// pollLoop is for servers without IDLE (or watch.idle false): NOOP and
// search every poll_interval.
func (s *session) pollLoop(ctx context.Context, cn *conn) error {
	interval := s.watch.PollInterval.Duration
	timeout := s.watch.ResponseTimeout.Duration
	hb := time.NewTicker(heartbeatEvery)
	defer hb.Stop()
	for {
		s.setState(StatePolling, nil, time.Time{})
		cn.dc.expect(interval + timeout)
		t := time.NewTimer(interval)
	wait:
		for {
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-cn.c.Closed():
				t.Stop()
				return errConnectionLost
			case <-s.wake:
				if err := s.takeRequest(); err != nil {
					t.Stop()
					return err
				}
			case <-s.newMail:
				t.Stop()
				break wait
			case <-s.emptied:
				t.Stop()
				break wait
			case <-t.C:
				break wait
			case <-hb.C:
				s.beat()
			}
		}
		s.beat()
		cn.dc.expect(timeout)
		if err := cn.c.Noop().Wait(); err != nil {
			return fmt.Errorf("noop: %w", err)
		}
		if err := s.verifyMailbox(cn); err != nil {
			return err
		}
		if _, err := s.catchUp(ctx, cn); err != nil {
			return err
		}
	}
}
