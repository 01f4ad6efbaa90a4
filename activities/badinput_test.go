package activities_test

import (
	"errors"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"

	"github.com/usersync/usersync/activities"
	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/profile"
)

// Bad input must give a clear error and change nothing: the directory after
// the failed run is the directory before it, and nobody is disabled.
func TestBadCSVChangesNothing(t *testing.T) {
	cases := []struct {
		name, content, want string
	}{
		{"empty", "", "empty"},
		{"header only", header, "no rows"},
		{"no match column", "login,firstName,lastName,email\njd,J,D,j@example.com\n", `"username"`},
		{"unbalanced quote", header + "alice,\"Alice,Archer,alice@example.com,,,,\n", "line 2"},
		{"not utf-8", header + "alice,Al\xffice,Archer,alice@example.com,,,,\n", "UTF-8"},
		{"html page", "<!DOCTYPE html><html><body>Sign in</body></html>\n", "HTML"},
	}
	eachDB(t, func(t *testing.T, db *directory.DB) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				h := newHarness(t, db, func(p *profile.Config) { p.Name = "bad " + c.name })
				h.setCSV(csvOf(alice, bob))
				h.mustSync()
				before := h.users()
				h.setCSV(c.content)
				r := h.sync(false, false)
				var ae *temporal.ApplicationError
				if !errors.As(r.err, &ae) || ae.Type() != activities.ErrTypeInvalidData || !ae.NonRetryable() {
					t.Fatalf("err = %v, want a non-retryable InvalidData error", r.err)
				}
				if !strings.Contains(strings.ToLower(ae.Message()), strings.ToLower(c.want)) {
					t.Errorf("message %q does not say %q", ae.Message(), c.want)
				}
				if r.run.Status != directory.RunFailed || r.run.Error == "" {
					t.Errorf("run %s %q", r.run.Status, r.run.Error)
				}
				after := h.users()
				for n, u := range before {
					if after[n].Status != u.Status || !after[n].UpdatedAt.Equal(u.UpdatedAt) {
						t.Errorf("%s changed by a failed run", n)
					}
				}
				// The next account's usernames must not collide with this case's.
				for _, u := range after {
					if err := h.store.DeleteUser(h.ctx, u.ID); err != nil {
						t.Fatal(err)
					}
				}
			})
		}
	})
}

func TestDuplicateUsernamesSkipBothRows(t *testing.T) {
	eachDB(t, func(t *testing.T, db *directory.DB) {
		h := newHarness(t, db, nil)
		h.setCSV(csvOf(alice, bob, "ALICE,Alicia,Other,alicia@example.com,,,,"))
		run := h.mustSync()
		if _, ok := h.users()["alice"]; ok {
			t.Fatal("a duplicated username was created")
		}
		if run.Counts.Created != 1 || run.Counts.Skipped != 1 {
			t.Fatalf("counts %+v", run.Counts)
		}
		c := h.changes(run.ID, "skipped")
		if len(c) != 1 || !strings.Contains(c[0].Reason, "duplicate") || !strings.Contains(c[0].Reason, "2") || !strings.Contains(c[0].Reason, "4") {
			t.Fatalf("ledger %+v", c)
		}
	})
}
