package azure

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/microsoftgraph/msgraph-sdk-go/models"
)

// attrMapping is one attributeMap entry: a Graph user property and the
// directory field it fills.
type attrMapping struct {
	property string
	field    string
	get      getter
}

// getter reads one property of a user as the directory stores it; ok is
// false when Graph has no value (null or an empty list).
type getter func(u models.Userable) (v string, ok bool)

func str(f func(models.Userable) *string) getter {
	return func(u models.Userable) (string, bool) {
		p := f(u)
		if p == nil || *p == "" {
			return "", false
		}
		return *p, true
	}
}

// list joins a multi-valued property with ";", the separator the CSV
// provider uses for lists too.
func list(f func(models.Userable) []string) getter {
	return func(u models.Userable) (string, bool) {
		vs := f(u)
		if len(vs) == 0 {
			return "", false
		}
		return strings.Join(vs, ";"), true
	}
}

func date(f func(models.Userable) *time.Time) getter {
	return func(u models.Userable) (string, bool) {
		t := f(u)
		if t == nil {
			return "", false
		}
		return t.UTC().Format(time.RFC3339), true
	}
}

func boolean(f func(models.Userable) *bool) getter {
	return func(u models.Userable) (string, bool) {
		b := f(u)
		if b == nil {
			return "", false
		}
		return strconv.FormatBool(*b), true
	}
}

// getters covers Attributes (a test holds them in step) and
// the username properties.
var getters = map[string]getter{
	"aboutMe":                     str(models.Userable.GetAboutMe),
	"ageGroup":                    str(models.Userable.GetAgeGroup),
	"birthday":                    date(models.Userable.GetBirthday),
	"businessPhones":              list(models.Userable.GetBusinessPhones),
	"city":                        str(models.Userable.GetCity),
	"companyName":                 str(models.Userable.GetCompanyName),
	"consentProvidedForMinor":     str(models.Userable.GetConsentProvidedForMinor),
	"country":                     str(models.Userable.GetCountry),
	"createdDateTime":             date(models.Userable.GetCreatedDateTime),
	"creationType":                str(models.Userable.GetCreationType),
	"department":                  str(models.Userable.GetDepartment),
	"displayName":                 str(models.Userable.GetDisplayName),
	"employeeHireDate":            date(models.Userable.GetEmployeeHireDate),
	"employeeId":                  str(models.Userable.GetEmployeeId),
	"employeeType":                str(models.Userable.GetEmployeeType),
	"faxNumber":                   str(models.Userable.GetFaxNumber),
	"givenName":                   str(models.Userable.GetGivenName),
	"hireDate":                    date(models.Userable.GetHireDate),
	"imAddresses":                 list(models.Userable.GetImAddresses),
	"interests":                   list(models.Userable.GetInterests),
	"jobTitle":                    str(models.Userable.GetJobTitle),
	"legalAgeGroupClassification": str(models.Userable.GetLegalAgeGroupClassification),
	"mail":                        str(models.Userable.GetMail),
	"mailNickname":                str(models.Userable.GetMailNickname),
	"mobilePhone":                 str(models.Userable.GetMobilePhone),
	"mySite":                      str(models.Userable.GetMySite),
	"officeLocation":              str(models.Userable.GetOfficeLocation),
	"otherMails":                  list(models.Userable.GetOtherMails),
	"pastProjects":                list(models.Userable.GetPastProjects),
	"postalCode":                  str(models.Userable.GetPostalCode),
	"preferredLanguage":           str(models.Userable.GetPreferredLanguage),
	"preferredName":               str(models.Userable.GetPreferredName),
	"proxyAddresses":              list(models.Userable.GetProxyAddresses),
	"responsibilities":            list(models.Userable.GetResponsibilities),
	"schools":                     list(models.Userable.GetSchools),
	"skills":                      list(models.Userable.GetSkills),
	"state":                       str(models.Userable.GetState),
	"streetAddress":               str(models.Userable.GetStreetAddress),
	"surname":                     str(models.Userable.GetSurname),
	"usageLocation":               str(models.Userable.GetUsageLocation),
	"userType":                    str(models.Userable.GetUserType),

	"userPrincipalName":           str(models.Userable.GetUserPrincipalName),
	"onPremisesSamAccountName":    str(models.Userable.GetOnPremisesSamAccountName),
	"onPremisesUserPrincipalName": str(models.Userable.GetOnPremisesUserPrincipalName),
	"accountEnabled":              boolean(models.Userable.GetAccountEnabled),
}

// PerUserProperties are the user properties Graph returns only from a
// single-user GET; asking for them on a list answers 501.
var PerUserProperties = []string{"aboutMe", "birthday", "hireDate", "interests", "mySite",
	"pastProjects", "preferredName", "responsibilities", "schools", "skills"}

// coreProperties are what every user page selects: identity, the required
// fields, the status, and the username property.
var coreProperties = []string{"id", "userPrincipalName", "givenName", "surname", "mail", "accountEnabled"}

// planAttributes splits the attribute map into what the user pages select
// and what needs a per-user read, in a fixed order.
func (s *Source) planAttributes(attrMap map[string]string) error {
	props := make([]string, 0, len(attrMap))
	for p := range attrMap {
		props = append(props, p)
	}
	sort.Strings(props)
	sel := slices.Clone(coreProperties)
	if !slices.Contains(sel, s.usernameAttr) {
		sel = append(sel, s.usernameAttr)
	}
	for _, p := range props {
		field := strings.TrimSpace(attrMap[p])
		get, known := getters[p]
		switch {
		case !slices.Contains(Attributes, p) || !known:
			return fmt.Errorf("azure: attributeMap: unknown Graph user property %q; allowed: %s", p, strings.Join(Attributes, ", "))
		case field == "":
			return fmt.Errorf("azure: attributeMap: no directory field for %q", p)
		}
		m := attrMapping{property: p, field: field, get: get}
		if slices.Contains(PerUserProperties, p) {
			s.perUserAttrs = append(s.perUserAttrs, m)
			s.perUserSelect = append(s.perUserSelect, p)
			continue
		}
		s.listAttrs = append(s.listAttrs, m)
		if !slices.Contains(sel, p) {
			sel = append(sel, p)
		}
	}
	s.listSelect = sel
	return nil
}
