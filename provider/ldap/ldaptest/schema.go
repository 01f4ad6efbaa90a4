package ldaptest

// adSchema gives slapd the Active Directory attributes usersync reads, under
// their Microsoft OIDs, so that an "ad" flavour profile runs against a real
// server: objectGUID is a 16-byte octet string as on a domain controller,
// userAccountControl an integer whose bit 2 disables the account. The
// classes are named "user" and "group" so that the AD default filters match
// unchanged. Debian's msuser.schema has the same attributes but without
// matching rules (no filter on sAMAccountName could match) and with the
// mandatory attributes only a domain controller fills in.
//
// nsAccountLock is 389 Directory Server's lock flag (its class here is under
// OpenLDAP's experimental arc), which the OpenLDAP/389
// flavour reads as "disabled".
const adSchema = `
attributetype ( 1.2.840.113556.1.4.2 NAME 'objectGUID'
	EQUALITY octetStringMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.40 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.8 NAME 'userAccountControl'
	EQUALITY integerMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.221 NAME 'sAMAccountName'
	EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.656 NAME 'userPrincipalName'
	EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 2.16.840.1.113730.3.1.610 NAME 'nsAccountLock'
	EQUALITY caseIgnoreMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
objectclass ( 1.2.840.113556.1.5.9 NAME 'user' SUP inetOrgPerson STRUCTURAL
	MAY ( objectGUID $ userAccountControl $ sAMAccountName $ userPrincipalName ) )
objectclass ( 1.2.840.113556.1.5.8 NAME 'group' SUP top STRUCTURAL
	MUST cn
	MAY ( member $ objectGUID $ sAMAccountName $ description $ mail ) )
objectclass ( 1.3.6.1.4.1.4203.666.11.99.1 NAME 'usersyncLockable' AUXILIARY
	MAY nsAccountLock )
`
