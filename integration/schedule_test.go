package integration

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/runs"
	"github.com/usersync/usersync/workflows"
)

// nextLocal is the next hh:mm in loc after now.
func nextLocal(now time.Time, loc *time.Location, hh, mm int) time.Time {
	l := now.In(loc)
	next := time.Date(l.Year(), l.Month(), l.Day(), hh, mm, 0, 0, loc)
	if !next.After(now) {
		next = time.Date(l.Year(), l.Month(), l.Day()+1, hh, mm, 0, 0, loc)
	}
	return next.UTC()
}

// TestSchedulesFollowProfiles saves profiles through the API and reads the
// schedules back from a real Temporal server: created with the right spec
// and zone, updated, paused while disabled, removed with frequency off or
// the profile, and nextRunAt straight from Temporal.
func TestSchedulesFollowProfiles(t *testing.T) {
	s := newStack(t, stackOptions{PageSize: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	describe := func(profileID string) (*client.ScheduleDescription, error) {
		return s.tmp.Client.ScheduleClient().GetHandle(ctx, runs.ScheduleID(profileID)).Describe(ctx)
	}
	mustDescribe := func(profileID string) *client.ScheduleDescription {
		t.Helper()
		d, err := describe(profileID)
		require.NoError(t, err)
		return d
	}
	gone := func(profileID string) {
		t.Helper()
		_, err := describe(profileID)
		var nf *serviceerror.NotFound
		require.True(t, errors.As(err, &nf), "schedule of %s should not exist: %v", profileID, err)
	}
	doc := s.upload(people(3))
	london, err := time.LoadLocation("Europe/London")
	require.NoError(t, err)

	// Daily at 12:00 London time.
	body := csvProfile("Daily", doc, map[string]any{"frequency": "daily", "time": "12:00", "timezone": "Europe/London"})
	var daily profileView
	require.Equal(t, 201, s.api.do("POST", "/profiles", body, &daily))
	d := mustDescribe(daily.ID)
	require.Len(t, d.Schedule.Spec.Calendars, 1)
	cal := d.Schedule.Spec.Calendars[0]
	assert.Equal(t, []client.ScheduleRange{{Start: 12, End: 12, Step: 1}}, cal.Hour)
	assert.Equal(t, []client.ScheduleRange{{Start: 0, End: 0, Step: 1}}, cal.Minute)
	assert.Equal(t, "Europe/London", d.Schedule.Spec.TimeZoneName)
	assert.Empty(t, d.Schedule.Spec.Intervals)
	assert.Equal(t, enumspb.SCHEDULE_OVERLAP_POLICY_SKIP, d.Schedule.Policy.Overlap)
	assert.False(t, d.Schedule.State.Paused)
	action, ok := d.Schedule.Action.(*client.ScheduleWorkflowAction)
	require.True(t, ok, "action %T", d.Schedule.Action)
	assert.Equal(t, workflows.ScheduledWorkflowName, action.Workflow)
	assert.Equal(t, s.client.TaskQueue, action.TaskQueue)
	want := nextLocal(time.Now(), london, 12, 0)
	require.NotEmpty(t, d.Info.NextActionTimes)
	assert.True(t, d.Info.NextActionTimes[0].Equal(want), "next action %v, want %v", d.Info.NextActionTimes[0], want)
	require.NotNil(t, daily.NextRunAt, "the create answer carries nextRunAt")
	assert.True(t, daily.NextRunAt.Equal(want), "nextRunAt %v, want %v", daily.NextRunAt, want)

	// Every 60 minutes: on the hour.
	body = csvProfile("Hourly", doc, map[string]any{"frequency": "interval", "everyMinutes": 60})
	var hourly profileView
	require.Equal(t, 201, s.api.do("POST", "/profiles", body, &hourly))
	d = mustDescribe(hourly.ID)
	require.Len(t, d.Schedule.Spec.Intervals, 1)
	assert.Equal(t, time.Hour, d.Schedule.Spec.Intervals[0].Every)
	assert.Empty(t, d.Schedule.Spec.Calendars)
	var got profileView
	require.Equal(t, 200, s.api.do("GET", "/profiles/"+hourly.ID, nil, &got))
	require.NotNil(t, got.NextRunAt)
	assert.Equal(t, time.Now().UTC().Truncate(time.Hour).Add(time.Hour), *got.NextRunAt)

	// Saved again at another time and zone: the spec follows.
	body = csvProfile("Daily", doc, map[string]any{"frequency": "daily", "time": "06:30", "timezone": "America/New_York"})
	require.Equal(t, 200, s.api.do("PUT", "/profiles/"+daily.ID, body, &got))
	d = mustDescribe(daily.ID)
	cal = d.Schedule.Spec.Calendars[0]
	assert.Equal(t, 6, cal.Hour[0].Start)
	assert.Equal(t, 30, cal.Minute[0].Start)
	assert.Equal(t, "America/New_York", d.Schedule.Spec.TimeZoneName)
	ny, err := time.LoadLocation("America/New_York")
	require.NoError(t, err)
	require.NotNil(t, got.NextRunAt)
	assert.True(t, got.NextRunAt.Equal(nextLocal(time.Now(), ny, 6, 30)), "nextRunAt %v", got.NextRunAt)

	// Disabled: paused, and no next run.
	body["enabled"] = false
	require.Equal(t, 200, s.api.do("PUT", "/profiles/"+daily.ID, body, &got))
	d = mustDescribe(daily.ID)
	assert.True(t, d.Schedule.State.Paused)
	assert.Nil(t, got.NextRunAt)
	var conflict struct {
		Error struct{ Code string } `json:"error"`
	}
	assert.Equal(t, 422, s.api.do("POST", "/profiles/"+daily.ID+"/reset-last-run", nil, &conflict))

	// Enabled again: running again.
	body["enabled"] = true
	require.Equal(t, 200, s.api.do("PUT", "/profiles/"+daily.ID, body, &got))
	assert.False(t, mustDescribe(daily.ID).Schedule.State.Paused)
	assert.NotNil(t, got.NextRunAt)

	// Frequency off: no schedule, and nothing to reset.
	body["schedule"] = map[string]any{"frequency": "off"}
	require.Equal(t, 200, s.api.do("PUT", "/profiles/"+daily.ID, body, &got))
	gone(daily.ID)
	assert.Nil(t, got.NextRunAt)
	require.Equal(t, 409, s.api.do("POST", "/profiles/"+daily.ID+"/reset-last-run", nil, &conflict))
	assert.Equal(t, "no_schedule", conflict.Error.Code)

	// Deleted with its profile.
	require.Equal(t, 204, s.api.do("DELETE", "/profiles/"+hourly.ID, nil, nil))
	gone(hourly.ID)

	// A schedule lost in Temporal (a reset dev server, say): the next save
	// brings it back, and so does the next start.
	lose := func() {
		t.Helper()
		require.NoError(t, s.tmp.Client.ScheduleClient().GetHandle(ctx, runs.ScheduleID(daily.ID)).Delete(ctx))
		gone(daily.ID)
	}
	body["schedule"] = map[string]any{"frequency": "interval", "everyMinutes": 30}
	require.Equal(t, 200, s.api.do("PUT", "/profiles/"+daily.ID, body, &got))
	lose()
	require.Equal(t, 200, s.api.do("PUT", "/profiles/"+daily.ID, body, &got))
	assert.Equal(t, 30*time.Minute, mustDescribe(daily.ID).Schedule.Spec.Intervals[0].Every)
	lose()
	// And a schedule whose profile is gone is deleted then.
	_, err = s.tmp.Client.ScheduleClient().Create(ctx, client.ScheduleOptions{ID: runs.ScheduleID("gone"),
		Spec:   client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: time.Hour}}},
		Action: &client.ScheduleWorkflowAction{Workflow: workflows.ScheduledWorkflowName, TaskQueue: s.client.TaskQueue}})
	require.NoError(t, err)
	waitFor(t, "the orphan schedule to be listed", func() bool {
		iter, err := s.tmp.Client.ScheduleClient().List(ctx, client.ScheduleListOptions{})
		require.NoError(t, err)
		for iter.HasNext() {
			e, err := iter.Next()
			require.NoError(t, err)
			if e.ID == runs.ScheduleID("gone") {
				return true
			}
		}
		return false
	})
	require.NoError(t, s.client.SyncAllSchedules(ctx))
	assert.Equal(t, 30*time.Minute, mustDescribe(daily.ID).Schedule.Spec.Intervals[0].Every)
	gone("gone")
}

// TestResetLastRunStartsAScheduledRun: reset-last-run makes the schedule
// act now; the tick starts the profile's run under its one workflow id and
// the run completes through the worker. A tick while a run is going
// records a skipped run naming it, and a daily tick after a manual success
// is skipped by the daily rule, unless the last run time was reset.
func TestResetLastRunStartsAScheduledRun(t *testing.T) {
	s := newStack(t, stackOptions{PageDelay: 100 * time.Millisecond, PageSize: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	doc := s.upload(people(6))
	// A slot far from now, so that no real tick interferes.
	at := time.Now().UTC().Add(12 * time.Hour).Format("15:04")
	body := csvProfile("Nightly", doc, map[string]any{"frequency": "daily", "time": at, "timezone": "UTC"})
	var p profileView
	require.Equal(t, 201, s.api.do("POST", "/profiles", body, &p))

	require.Equal(t, 202, s.api.do("POST", "/profiles/"+p.ID+"/reset-last-run", nil, nil))
	var first runRow
	waitFor(t, "the scheduled run", func() bool {
		runs := s.runsOf(p.ID)
		if len(runs) == 0 {
			return false
		}
		first = runs[0]
		return true
	})
	first = s.waitRun(first.ID)
	require.Equal(t, directory.RunSucceeded, first.Status, "run %+v", first)
	assert.Equal(t, directory.TriggerSchedule, first.Trigger)
	assert.Equal(t, 6, first.Counts.Created)
	assert.Equal(t, workflows.WorkflowID(p.ID), first.WorkflowID, "one workflow id per profile, schedule or not")
	assert.Contains(t, first.TemporalUIURL, "/workflows/"+workflows.WorkflowID(p.ID)+"/"+first.TemporalRunID)

	// A manual run going: the tick records a skipped run that names it.
	var manual runRow
	require.Equal(t, 202, s.api.do("POST", "/profiles/"+p.ID+"/sync", map[string]any{}, &manual))
	require.Equal(t, 202, s.api.do("POST", "/profiles/"+p.ID+"/reset-last-run", nil, nil))
	var skipped runRow
	waitFor(t, "the skipped tick", func() bool {
		for _, r := range s.runsOf(p.ID) {
			if r.Trigger == directory.TriggerSchedule && r.ID != first.ID {
				skipped = r
				return true
			}
		}
		return false
	})
	assert.Equal(t, directory.RunSkipped, skipped.Status)
	assert.Equal(t, "a run of this profile was already running (run "+manual.ID+")", skipped.Error)
	assert.True(t, strings.HasPrefix(skipped.WorkflowID, "usersync-scheduled-"+p.ID), "the row links the tick: %s", skipped.WorkflowID)
	manual = s.waitRun(manual.ID)
	require.Equal(t, directory.RunSucceeded, manual.Status, "manual run %+v", manual)

	// The schedule's own tick (no reset) after that manual success: the
	// daily rule skips it. (A triggered tick's slot is its start time to
	// the second: a second later, the success is surely before it.)
	time.Sleep(1100 * time.Millisecond)
	require.NoError(t, s.tmp.Client.ScheduleClient().GetHandle(ctx, runs.ScheduleID(p.ID)).
		Trigger(ctx, client.ScheduleTriggerOptions{}))
	var ruled runRow
	waitFor(t, "the tick the daily rule skips", func() bool {
		runs := s.runsOf(p.ID)
		ruled = runs[0]
		return len(runs) == 4
	})
	assert.Equal(t, directory.RunSkipped, ruled.Status)
	assert.Contains(t, ruled.Error, "a manual sync succeeded at ")
	assert.Contains(t, ruled.Error, "(run "+manual.ID+"), within the 24 hours before this scheduled run")

	// Reset last run time: the manual run no longer counts, the tick syncs.
	require.Equal(t, 202, s.api.do("POST", "/profiles/"+p.ID+"/reset-last-run", nil, nil))
	var again runRow
	waitFor(t, "the run after the reset", func() bool {
		runs := s.runsOf(p.ID)
		again = runs[0]
		return len(runs) == 5
	})
	again = s.waitRun(again.ID)
	assert.Equal(t, directory.RunSucceeded, again.Status, "run %+v", again)
	assert.Equal(t, directory.TriggerSchedule, again.Trigger)
}
