package runs

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/profile"
)

func TestScheduleSpec(t *testing.T) {
	spec, catchup, on, err := ScheduleSpec(profile.Schedule{Frequency: profile.ScheduleDaily, Time: "07:30", Timezone: "Europe/London"})
	require.NoError(t, err)
	require.True(t, on)
	assert.Equal(t, time.Hour, catchup)
	assert.Equal(t, "Europe/London", spec.TimeZoneName)
	require.Len(t, spec.Calendars, 1)
	assert.Equal(t, 7, spec.Calendars[0].Hour[0].Start)
	assert.Equal(t, 30, spec.Calendars[0].Minute[0].Start)
	assert.Empty(t, spec.Intervals)

	spec, catchup, on, err = ScheduleSpec(profile.Schedule{Frequency: profile.ScheduleInterval, EveryMinutes: 15})
	require.NoError(t, err)
	require.True(t, on)
	assert.Equal(t, 15*time.Minute, catchup)
	require.Len(t, spec.Intervals, 1)
	assert.Equal(t, 15*time.Minute, spec.Intervals[0].Every)
	assert.Empty(t, spec.Calendars)

	_, _, on, err = ScheduleSpec(profile.Schedule{Frequency: profile.ScheduleOff})
	require.NoError(t, err)
	assert.False(t, on)

	for _, bad := range []profile.Schedule{
		{Frequency: profile.ScheduleInterval, EveryMinutes: 4},
		{Frequency: profile.ScheduleDaily, Time: "24:00"},
		{Frequency: profile.ScheduleDaily, Time: "noon"},
		{Frequency: "weekly"},
	} {
		_, _, _, err := ScheduleSpec(bad)
		assert.Error(t, err, "%+v", bad)
	}
}

func TestScheduleOf(t *testing.T) {
	s, err := ScheduleOf(&directory.Profile{Config: []byte(`{"name":"x","schedule":{"frequency":"interval","everyMinutes":30}}`)})
	require.NoError(t, err)
	assert.Equal(t, profile.Schedule{Frequency: profile.ScheduleInterval, EveryMinutes: 30}, s)
	s, err = ScheduleOf(&directory.Profile{})
	require.NoError(t, err)
	assert.Equal(t, profile.ScheduleOff, s.Frequency)
	_, err = ScheduleOf(&directory.Profile{Config: []byte(`{`)})
	assert.Error(t, err)
}
