package seccomptest

import (
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	MaybeInstallFromEnv()
	os.Exit(m.Run())
}
