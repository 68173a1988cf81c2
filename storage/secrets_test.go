package storage

import (
	"bytes"
	"sync"
	"testing"
)

func TestSecretIsMadeOnceAndShared(t *testing.T) {
	db := newDB(t)
	const n = 6
	got := make([][]byte, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			v, err := db.Secret(t.Context(), "calendar")
			if err != nil {
				t.Error(err)
			}
			got[i] = v
		})
	}
	wg.Wait()
	for i := range got {
		if len(got[i]) != 32 || !bytes.Equal(got[i], got[0]) {
			t.Fatalf("secret %d = %x, want the same 32 bytes as %x", i, got[i], got[0])
		}
	}
	other, err := db.Secret(t.Context(), "other")
	if err != nil || bytes.Equal(other, got[0]) {
		t.Errorf("another secret: %x, %v; want a different value", other, err)
	}
}
