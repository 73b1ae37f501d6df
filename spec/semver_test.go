package spec

import (
	"regexp"
	"testing"
)

// semverRE is semver.org's regular expression, which semverMajor replaces.
var semverRE = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)` +
	`(?:-(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*)?` +
	`(?:\+[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*)?$`)

func TestSemverMajor(t *testing.T) {
	for _, v := range []string{
		"1.0.0", "1.3.0", "0.0.0", "10.20.30", "1.0.2-dev", "1.0.0-alpha.1", "1.0.0-0.3.7",
		"1.0.0-x-y-z.--", "1.0.0-alpha+001", "1.0.0+20130313144700", "1.0.0-beta+exp.sha.5114f85",
		"1.0.0+0.build.1-rc.10000aaa-kk-0.1", "1.0.0-0A.is.legal", "1.0.0--",
		"", "1", "1.0", "1.0.0.0", "01.0.0", "1.00.0", "1.0.00", "1.0.0-", "1.0.0+", "1.0.0-01",
		"1.0.0-a..b", "1.0.0+a..b", "1.0.0+a+b", "1.0.0-a_b", "v1.0.0", " 1.0.0", "1.0.0 ",
		"1.0.0-\u00e9", "١.0.0", "1.-1.0", "1.0.0-00a", "1.0.0+01",
	} {
		m := semverRE.FindStringSubmatch(v)
		major, ok := semverMajor(v)
		if ok != (m != nil) || ok && major != m[1] {
			t.Errorf("semverMajor(%q) = %q, %v; the regexp says %q", v, major, ok, m)
		}
	}
}
