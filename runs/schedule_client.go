package runs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/profile"
	"github.com/usersync/usersync/workflows"
)

// The schedule side of Client. Each profile whose frequency is not "off"
// has one Temporal schedule; a profile with frequency "off" has none (not a
// paused one: nothing then lingers in the UI's schedule list, and "paused"
// keeps one meaning: the profile is disabled). The store is the source of
// truth: SyncSchedule makes the schedule match the stored profile, so the
// API calls it after every save, and SyncAllSchedules at start mends what a
// failed save or a reset Temporal left behind.

// Catch-up windows: how late a tick missed while the Temporal server was
// down may still run once it is back.
const (
	// dailyCatchupWindow is short on purpose: a daily sync is usually
	// placed at a quiet hour, and running it hours late could land in
	// the working day; the next slot runs anyway.
	dailyCatchupWindow = time.Hour
)

// ScheduleID is the id of a profile's Temporal schedule.
func ScheduleID(profileID string) string { return "usersync-schedule-" + profileID }

// scheduledWorkflowID is the id the schedule gives its ticks (Temporal
// appends the slot's timestamp).
func scheduledWorkflowID(profileID string) string { return "usersync-scheduled-" + profileID }

// ScheduleOf reads the schedule of a stored profile. It is not a secret, so
// the clear part of the profile has it and no key is needed.
func ScheduleOf(p *directory.Profile) (profile.Schedule, error) {
	var clear struct {
		Schedule profile.Schedule `json:"schedule"`
	}
	if len(p.Config) > 0 {
		if err := json.Unmarshal(p.Config, &clear); err != nil {
			return profile.Schedule{}, fmt.Errorf("schedule of profile %s: %w", p.ID, err)
		}
	}
	if clear.Schedule.Frequency == "" {
		clear.Schedule.Frequency = profile.ScheduleOff
	}
	return clear.Schedule, nil
}

// ScheduleSpec is the Temporal spec and catch-up window of a profile
// schedule; ok is false for frequency "off". The schedule must have been
// validated (profile.Config.Validate): a bad one is an error here.
func ScheduleSpec(s profile.Schedule) (spec client.ScheduleSpec, catchup time.Duration, ok bool, err error) {
	switch s.Frequency {
	case profile.ScheduleOff, "":
		return client.ScheduleSpec{}, 0, false, nil
	case profile.ScheduleInterval:
		if s.EveryMinutes < profile.MinIntervalMinutes {
			return client.ScheduleSpec{}, 0, false, fmt.Errorf("schedule every %d minutes: at least %d", s.EveryMinutes, profile.MinIntervalMinutes)
		}
		every := time.Duration(s.EveryMinutes) * time.Minute
		// A tick missed by more than one interval is replaced by the next.
		return client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: every}}}, every, true, nil
	case profile.ScheduleDaily:
		hh, mm, found := strings.Cut(s.Time, ":")
		h, herr := strconv.Atoi(hh)
		m, merr := strconv.Atoi(mm)
		if !found || herr != nil || merr != nil || h < 0 || h > 23 || m < 0 || m > 59 {
			return client.ScheduleSpec{}, 0, false, fmt.Errorf("daily schedule time %q: not HH:MM", s.Time)
		}
		tz := s.Timezone
		if tz == "" {
			tz = "UTC"
		}
		return client.ScheduleSpec{
			Calendars: []client.ScheduleCalendarSpec{{
				Hour:    []client.ScheduleRange{{Start: h}},
				Minute:  []client.ScheduleRange{{Start: m}},
				Comment: fmt.Sprintf("daily at %02d:%02d %s", h, m, tz),
			}},
			// The server applies the zone, daylight saving included.
			TimeZoneName: tz,
		}, dailyCatchupWindow, true, nil
	}
	return client.ScheduleSpec{}, 0, false, fmt.Errorf("schedule frequency %q: not off, interval or daily", s.Frequency)
}

// SyncSchedule makes the profile's schedule match the profile as stored:
// created or updated (spec, time zone, action), paused while the profile
// is disabled, and deleted when its frequency is off.
func (c *Client) SyncSchedule(ctx context.Context, p *directory.Profile) error {
	sched, err := ScheduleOf(p)
	if err != nil {
		return err
	}
	spec, catchup, on, err := ScheduleSpec(sched)
	if err != nil {
		return fmt.Errorf("schedule of profile %q: %w", p.Name, err)
	}
	if !on {
		return c.DeleteSchedule(ctx, p.ID)
	}
	paused := !p.Enabled
	note := "usersync: profile enabled"
	if paused {
		note = "usersync: paused while the profile is disabled"
	}
	action := c.scheduleAction(ctx, p)
	policy := &client.SchedulePolicies{Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP, CatchupWindow: catchup}
	update := func() error {
		return c.Temporal.ScheduleClient().GetHandle(ctx, ScheduleID(p.ID)).Update(ctx, client.ScheduleUpdateOptions{
			DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
				s := in.Description.Schedule
				s.Spec, s.Action, s.Policy = &spec, action, policy
				if s.State == nil {
					s.State = &client.ScheduleState{}
				}
				s.State.Paused, s.State.Note = paused, note
				return &client.ScheduleUpdate{Schedule: &s}, nil
			},
		})
	}
	err = update()
	if !isNotFound(err) {
		if err != nil {
			return fmt.Errorf("update schedule of profile %q: %w", p.Name, err)
		}
		return nil
	}
	_, err = c.Temporal.ScheduleClient().Create(ctx, client.ScheduleOptions{
		ID:            ScheduleID(p.ID),
		Spec:          spec,
		Action:        action,
		Overlap:       enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
		CatchupWindow: catchup,
		Paused:        paused,
		Note:          note,
	})
	if errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		// Another save created it in between: make it ours.
		err = update()
	}
	if err != nil {
		return fmt.Errorf("create schedule of profile %q: %w", p.Name, err)
	}
	return nil
}

func (c *Client) scheduleAction(ctx context.Context, p *directory.Profile) *client.ScheduleWorkflowAction {
	return &client.ScheduleWorkflowAction{
		ID:        scheduledWorkflowID(p.ID),
		Workflow:  workflows.ScheduledWorkflowName,
		Args:      []any{workflows.ScheduledInput{ProfileID: p.ID}},
		TaskQueue: c.TaskQueue,
		// The ticks list under the profile in the UI, like its runs; a tick
		// passes the ones it carries on to the run it starts.
		TypedSearchAttributes: c.Attrs.For(ctx, p),
		StaticSummary:         workflows.TickSummary(p.Name, p.Provider),
		StaticDetails:         workflows.TickDetails(p.Name, p.ID),
	}
}

// DeleteSchedule removes the profile's schedule; none is not an error.
func (c *Client) DeleteSchedule(ctx context.Context, profileID string) error {
	err := c.Temporal.ScheduleClient().GetHandle(ctx, ScheduleID(profileID)).Delete(ctx)
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("delete schedule of profile %s: %w", profileID, err)
	}
	return nil
}

// NextRunAt is the next time the profile's schedule acts, from Temporal
// itself; nil when it has no schedule or the schedule is paused.
func (c *Client) NextRunAt(ctx context.Context, profileID string) (*time.Time, error) {
	desc, err := c.Temporal.ScheduleClient().GetHandle(ctx, ScheduleID(profileID)).Describe(ctx)
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("describe schedule of profile %s: %w", profileID, err)
	}
	if st := desc.Schedule.State; st != nil && st.Paused {
		return nil, nil
	}
	if len(desc.Info.NextActionTimes) == 0 {
		return nil, nil
	}
	next := desc.Info.NextActionTimes[0].UTC()
	return &next, nil
}

// TriggerSchedule makes the profile's schedule act now, as a tick would
// (same workflow, same rules). A schedule missing in Temporal is created
// first, from the stored profile.
func (c *Client) TriggerSchedule(ctx context.Context, p *directory.Profile) error {
	trigger := func() error {
		return c.Temporal.ScheduleClient().GetHandle(ctx, ScheduleID(p.ID)).Trigger(ctx, client.ScheduleTriggerOptions{})
	}
	err := trigger()
	if isNotFound(err) {
		if err = c.SyncSchedule(ctx, p); err != nil {
			return err
		}
		err = trigger()
	}
	if err != nil {
		return fmt.Errorf("trigger schedule of profile %q: %w", p.Name, err)
	}
	return nil
}

// SyncAllSchedules brings every profile's schedule in line with the store,
// deletes the schedules of profiles that no longer exist, and returns the
// errors of what it could not do. Run at start, it mends a save whose
// schedule step failed, profiles saved before schedules existed, and a
// Temporal server that lost its schedules or kept one too many.
func (c *Client) SyncAllSchedules(ctx context.Context) error {
	var errs []error
	opt := directory.ListOptions{Limit: 1000}
	for {
		page, err := c.Store.ListProfiles(ctx, opt)
		if err != nil {
			return fmt.Errorf("list profiles: %w", err)
		}
		for i := range page.Items {
			if err := c.SyncSchedule(ctx, &page.Items[i]); err != nil {
				errs = append(errs, err)
			}
		}
		if page.NextCursor == "" {
			break
		}
		opt.Cursor = page.NextCursor
	}
	if err := c.pruneSchedules(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// pruneSchedules deletes usersync schedules whose profile is gone (deleted
// while a schedule was restored, or by hand in the database). Only the
// store's "not found" deletes one: the listing may lag, the store does not.
func (c *Client) pruneSchedules(ctx context.Context) error {
	iter, err := c.Temporal.ScheduleClient().List(ctx, client.ScheduleListOptions{})
	if err != nil {
		return fmt.Errorf("list schedules: %w", err)
	}
	var errs []error
	for iter.HasNext() {
		entry, err := iter.Next()
		if err != nil {
			return fmt.Errorf("list schedules: %w", err)
		}
		profileID, ok := strings.CutPrefix(entry.ID, ScheduleID(""))
		if !ok {
			continue
		}
		_, err = c.Store.GetProfile(ctx, profileID)
		switch {
		case errors.Is(err, directory.ErrNotFound):
			errs = append(errs, c.DeleteSchedule(ctx, profileID))
		case err != nil:
			errs = append(errs, fmt.Errorf("profile of schedule %s: %w", entry.ID, err))
		}
	}
	return errors.Join(errs...)
}

func isNotFound(err error) bool {
	var nf *serviceerror.NotFound
	return errors.As(err, &nf)
}
