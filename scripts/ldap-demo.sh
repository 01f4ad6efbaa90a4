#!/usr/bin/env bash
# scripts/ldap-demo.sh — start an OpenLDAP server (Debian's slapd) with a
# small sample directory for the README's LDAP walkthrough: six people
# with managers, one of them disabled, and nested groups (engineering
# holds platform). Everything lives in one directory (default
# .data/ldap-demo); nothing is installed as a service.
#
#   scripts/ldap-demo.sh            start on ldap://127.0.0.1:3389
#   LDAP_PORT=3390 scripts/ldap-demo.sh
#   scripts/ldap-demo.sh stop       stop it
#
# The service account usersync binds with is
# cn=usersync,dc=example,dc=org / usersync-demo. Plain ldap:// is accepted
# only because the server is on loopback; a real directory needs ldaps://
# or StartTLS.
set -euo pipefail

cd "$(dirname "$0")/.."
dir="${LDAP_DEMO_DIR:-.data/ldap-demo}"
port="${LDAP_PORT:-3389}"
slapd="$(command -v slapd || echo /usr/sbin/slapd)"
slapadd="$(command -v slapadd || echo /usr/sbin/slapadd)"

if [[ "${1:-}" == "stop" ]]; then
  if [[ -f "$dir/slapd.pid" ]]; then
    kill "$(cat "$dir/slapd.pid")" && echo "ldap-demo: stopped"
  else
    echo "ldap-demo: not running"
  fi
  exit 0
fi

if [[ ! -x "$slapd" ]]; then
  echo "ldap-demo: slapd is not installed: apt-get install slapd ldap-utils" >&2
  exit 1
fi
if [[ -f "$dir/slapd.pid" ]] && kill -0 "$(cat "$dir/slapd.pid")" 2>/dev/null; then
  echo "ldap-demo: already running (pid $(cat "$dir/slapd.pid")); scripts/ldap-demo.sh stop first" >&2
  exit 1
fi

rm -rf "$dir"
mkdir -p "$dir/data"
dir="$(cd "$dir" && pwd)"

# 389 Directory Server's lock flag, which usersync reads as "disabled".
cat >"$dir/demo.schema" <<'EOF'
attributetype ( 2.16.840.1.113730.3.1.610 NAME 'nsAccountLock'
	EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
objectclass ( 1.3.6.1.4.1.4203.666.11.99.1 NAME 'usersyncLockable' AUXILIARY MAY nsAccountLock )
EOF

cat >"$dir/slapd.conf" <<EOF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include $dir/demo.schema
pidfile $dir/slapd.pid
argsfile $dir/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
sizelimit size.soft=500 size.hard=500 size.prtotal=unlimited
access to dn.base="" by * read
access to dn.base="cn=Subschema" by * read

database mdb
suffix "dc=example,dc=org"
rootdn "cn=admin,dc=example,dc=org"
rootpw admin-demo
directory $dir/data
index objectClass,entryUUID,uid,cn eq
access to attrs=userPassword by self write by anonymous auth by * none
access to * by dn.exact="cn=usersync,dc=example,dc=org" read by * none
EOF

person() { # uid given sn [manager-uid] [locked]
  printf 'dn: uid=%s,ou=people,dc=example,dc=org\nobjectClass: inetOrgPerson\nobjectClass: usersyncLockable\nuid: %s\ncn: %s %s\ngivenName: %s\nsn: %s\nmail: %s@example.org\n' \
    "$1" "$1" "$2" "$3" "$2" "$3" "$1"
  if [[ -n "${4:-}" ]]; then printf 'manager: uid=%s,ou=people,dc=example,dc=org\n' "$4"; fi
  if [[ -n "${5:-}" ]]; then printf 'nsAccountLock: TRUE\n'; fi
  printf '\n'
}
{
  printf 'dn: dc=example,dc=org\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n'
  printf 'dn: ou=people,dc=example,dc=org\nobjectClass: organizationalUnit\nou: people\n\n'
  printf 'dn: ou=groups,dc=example,dc=org\nobjectClass: organizationalUnit\nou: groups\n\n'
  printf 'dn: cn=usersync,dc=example,dc=org\nobjectClass: person\nobjectClass: simpleSecurityObject\ncn: usersync\nsn: usersync\nuserPassword: usersync-demo\n\n'
  person ada Ada Lovelace
  person grace Grace Hopper ada
  person linus Linus Pauling grace
  person margaret Margaret Hamilton ada
  person ken Ken Thompson margaret
  person dennis Dennis Ritchie margaret locked
  printf 'dn: cn=platform,ou=groups,dc=example,dc=org\nobjectClass: groupOfNames\ncn: platform\nmember: uid=ken,ou=people,dc=example,dc=org\nmember: uid=dennis,ou=people,dc=example,dc=org\n\n'
  printf 'dn: cn=engineering,ou=groups,dc=example,dc=org\nobjectClass: groupOfNames\ncn: engineering\nmember: uid=grace,ou=people,dc=example,dc=org\nmember: uid=margaret,ou=people,dc=example,dc=org\nmember: cn=platform,ou=groups,dc=example,dc=org\n\n'
  printf 'dn: cn=research,ou=groups,dc=example,dc=org\nobjectClass: groupOfNames\ncn: research\nmember: uid=ada,ou=people,dc=example,dc=org\nmember: uid=linus,ou=people,dc=example,dc=org\n\n'
} |
  # Entries dated a day back, as in a directory that has been in use: an
  # incremental run reads what changed since the last run less a few
  # minutes for clock skew, and a group changed in that window makes it
  # full (docs/architecture.md). Without this, a sync in the first minutes
  # after the start would read everything again.
  sed "/^dn: /a createTimestamp: $(date -u -d '1 day ago' +%Y%m%d%H%M%SZ)\nmodifyTimestamp: $(date -u -d '1 day ago' +%Y%m%d%H%M%SZ)" \
    >"$dir/sample.ldif"

"$slapadd" -q -f "$dir/slapd.conf" -l "$dir/sample.ldif"
"$slapd" -f "$dir/slapd.conf" -h "ldap://127.0.0.1:$port/"
for _ in $(seq 50); do
  [[ -f "$dir/slapd.pid" ]] && break
  sleep 0.1
done

cat <<EOF
ldap-demo: slapd is listening on ldap://127.0.0.1:$port (pid $(cat "$dir/slapd.pid"), data in $dir)
A profile's "ldap" block for it:

  "provider": "ldap",
  "ldap": {"url": "ldap://127.0.0.1:$port", "bindDn": "cn=usersync,dc=example,dc=org",
           "bindPassword": "usersync-demo", "baseDn": "dc=example,dc=org", "flavour": "openldap"}

Change someone and sync again (LDIF lines start in the first column):

ldapmodify -x -H ldap://127.0.0.1:$port -D cn=admin,dc=example,dc=org -w admin-demo <<'LDIF'
dn: uid=ken,ou=people,dc=example,dc=org
changetype: modify
replace: sn
sn: Thompson-Pike
LDIF


Stop it with: scripts/ldap-demo.sh stop
EOF
