package activities

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"go.temporal.io/sdk/temporal"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/directory/dbtest"
	"github.com/usersync/usersync/schema"
)

// TestClassifyDataErrorIsFinal: PostgreSQL refusing a value (a NUL in a
// name is "invalid byte sequence", SQLSTATE 22021) fails the same way on
// every attempt, so a step must not retry it for ever (issue 13, item 3).
// The error comes from a real PostgreSQL.
func TestClassifyDataErrorIsFinal(t *testing.T) {
	db := dbtest.Open(t, schema.Postgres)
	store := directory.NewSQLStore(db)
	err := store.CreateUser(context.Background(), &directory.User{Username: "j\x00doe", FirstName: "J", LastName: "D",
		Email: "j@example.com", Status: directory.StatusActive})
	if err == nil {
		t.Fatal("PostgreSQL stored a NUL")
	}
	if !directory.IsDataError(err) {
		t.Fatalf("IsDataError(%v) = false", err)
	}
	var ae *temporal.ApplicationError
	if c := classify(fmt.Errorf("stage users: %w", err)); !errors.As(c, &ae) || !ae.NonRetryable() || ae.Type() != ErrTypeInvalidData {
		t.Fatalf("classify = %#v, want a non-retryable %s error", c, ErrTypeInvalidData)
	}
	if c := classify(errors.New("pq: the database system is shutting down")); errors.As(c, &ae) {
		t.Fatalf("a transient database error became %v", c)
	}
}
