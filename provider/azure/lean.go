package azure

import (
	"encoding/json"
	"time"

	"github.com/microsoftgraph/msgraph-sdk-go/models"
)

// The user pages of a full sync are its hot path: the SDK's JSON parsing
// does some 7,000 users a second per core (PROVIDERS.md), encoding/json
// many times that. So a page is fetched through the SDK's request adapter
// as bytes (its authentication, our retry middleware and its error mapping
// still apply), decoded by encoding/json into leanUser, and turned into the
// SDK's user with only what the page selected: the mapping (getters) stays
// one for every path.

// leanUser is a user of a page, every property a page may select.
type leanUser struct {
	ID                          string     `json:"id"`
	AboutMe                     *string    `json:"aboutMe"`
	AgeGroup                    *string    `json:"ageGroup"`
	Birthday                    *time.Time `json:"birthday"`
	BusinessPhones              []string   `json:"businessPhones"`
	City                        *string    `json:"city"`
	CompanyName                 *string    `json:"companyName"`
	ConsentProvidedForMinor     *string    `json:"consentProvidedForMinor"`
	Country                     *string    `json:"country"`
	CreatedDateTime             *time.Time `json:"createdDateTime"`
	CreationType                *string    `json:"creationType"`
	Department                  *string    `json:"department"`
	DisplayName                 *string    `json:"displayName"`
	EmployeeHireDate            *time.Time `json:"employeeHireDate"`
	EmployeeId                  *string    `json:"employeeId"`
	EmployeeType                *string    `json:"employeeType"`
	FaxNumber                   *string    `json:"faxNumber"`
	GivenName                   *string    `json:"givenName"`
	HireDate                    *time.Time `json:"hireDate"`
	ImAddresses                 []string   `json:"imAddresses"`
	Interests                   []string   `json:"interests"`
	JobTitle                    *string    `json:"jobTitle"`
	LegalAgeGroupClassification *string    `json:"legalAgeGroupClassification"`
	Mail                        *string    `json:"mail"`
	MailNickname                *string    `json:"mailNickname"`
	MobilePhone                 *string    `json:"mobilePhone"`
	MySite                      *string    `json:"mySite"`
	OfficeLocation              *string    `json:"officeLocation"`
	OtherMails                  []string   `json:"otherMails"`
	PastProjects                []string   `json:"pastProjects"`
	PostalCode                  *string    `json:"postalCode"`
	PreferredLanguage           *string    `json:"preferredLanguage"`
	PreferredName               *string    `json:"preferredName"`
	ProxyAddresses              []string   `json:"proxyAddresses"`
	Responsibilities            []string   `json:"responsibilities"`
	Schools                     []string   `json:"schools"`
	Skills                      []string   `json:"skills"`
	State                       *string    `json:"state"`
	StreetAddress               *string    `json:"streetAddress"`
	Surname                     *string    `json:"surname"`
	UsageLocation               *string    `json:"usageLocation"`
	UserType                    *string    `json:"userType"`
	UserPrincipalName           *string    `json:"userPrincipalName"`
	OnPremisesSamAccountName    *string    `json:"onPremisesSamAccountName"`
	OnPremisesUserPrincipalName *string    `json:"onPremisesUserPrincipalName"`
	AccountEnabled              *bool      `json:"accountEnabled"`
}

// userPage is a page of users.
type userPage struct {
	Next  string     `json:"@odata.nextLink"`
	Value []leanUser `json:"value"`
}

// decodeUsers decodes a page of users into the SDK's models.
func decodeUsers(body []byte) (next string, users []models.Userable, err error) {
	var p userPage
	if err := json.Unmarshal(body, &p); err != nil {
		return "", nil, err
	}
	users = make([]models.Userable, 0, len(p.Value))
	for i := range p.Value {
		users = append(users, p.Value[i].model())
	}
	return p.Next, users, nil
}

// model is the SDK's user with the properties the page had.
func (l *leanUser) model() models.Userable {
	u := models.NewUser()
	id := l.ID
	u.SetId(&id)
	if l.AboutMe != nil {
		u.SetAboutMe(l.AboutMe)
	}
	if l.AgeGroup != nil {
		u.SetAgeGroup(l.AgeGroup)
	}
	if l.Birthday != nil {
		u.SetBirthday(l.Birthday)
	}
	if l.BusinessPhones != nil {
		u.SetBusinessPhones(l.BusinessPhones)
	}
	if l.City != nil {
		u.SetCity(l.City)
	}
	if l.CompanyName != nil {
		u.SetCompanyName(l.CompanyName)
	}
	if l.ConsentProvidedForMinor != nil {
		u.SetConsentProvidedForMinor(l.ConsentProvidedForMinor)
	}
	if l.Country != nil {
		u.SetCountry(l.Country)
	}
	if l.CreatedDateTime != nil {
		u.SetCreatedDateTime(l.CreatedDateTime)
	}
	if l.CreationType != nil {
		u.SetCreationType(l.CreationType)
	}
	if l.Department != nil {
		u.SetDepartment(l.Department)
	}
	if l.DisplayName != nil {
		u.SetDisplayName(l.DisplayName)
	}
	if l.EmployeeHireDate != nil {
		u.SetEmployeeHireDate(l.EmployeeHireDate)
	}
	if l.EmployeeId != nil {
		u.SetEmployeeId(l.EmployeeId)
	}
	if l.EmployeeType != nil {
		u.SetEmployeeType(l.EmployeeType)
	}
	if l.FaxNumber != nil {
		u.SetFaxNumber(l.FaxNumber)
	}
	if l.GivenName != nil {
		u.SetGivenName(l.GivenName)
	}
	if l.HireDate != nil {
		u.SetHireDate(l.HireDate)
	}
	if l.ImAddresses != nil {
		u.SetImAddresses(l.ImAddresses)
	}
	if l.Interests != nil {
		u.SetInterests(l.Interests)
	}
	if l.JobTitle != nil {
		u.SetJobTitle(l.JobTitle)
	}
	if l.LegalAgeGroupClassification != nil {
		u.SetLegalAgeGroupClassification(l.LegalAgeGroupClassification)
	}
	if l.Mail != nil {
		u.SetMail(l.Mail)
	}
	if l.MailNickname != nil {
		u.SetMailNickname(l.MailNickname)
	}
	if l.MobilePhone != nil {
		u.SetMobilePhone(l.MobilePhone)
	}
	if l.MySite != nil {
		u.SetMySite(l.MySite)
	}
	if l.OfficeLocation != nil {
		u.SetOfficeLocation(l.OfficeLocation)
	}
	if l.OtherMails != nil {
		u.SetOtherMails(l.OtherMails)
	}
	if l.PastProjects != nil {
		u.SetPastProjects(l.PastProjects)
	}
	if l.PostalCode != nil {
		u.SetPostalCode(l.PostalCode)
	}
	if l.PreferredLanguage != nil {
		u.SetPreferredLanguage(l.PreferredLanguage)
	}
	if l.PreferredName != nil {
		u.SetPreferredName(l.PreferredName)
	}
	if l.ProxyAddresses != nil {
		u.SetProxyAddresses(l.ProxyAddresses)
	}
	if l.Responsibilities != nil {
		u.SetResponsibilities(l.Responsibilities)
	}
	if l.Schools != nil {
		u.SetSchools(l.Schools)
	}
	if l.Skills != nil {
		u.SetSkills(l.Skills)
	}
	if l.State != nil {
		u.SetState(l.State)
	}
	if l.StreetAddress != nil {
		u.SetStreetAddress(l.StreetAddress)
	}
	if l.Surname != nil {
		u.SetSurname(l.Surname)
	}
	if l.UsageLocation != nil {
		u.SetUsageLocation(l.UsageLocation)
	}
	if l.UserType != nil {
		u.SetUserType(l.UserType)
	}
	if l.UserPrincipalName != nil {
		u.SetUserPrincipalName(l.UserPrincipalName)
	}
	if l.OnPremisesSamAccountName != nil {
		u.SetOnPremisesSamAccountName(l.OnPremisesSamAccountName)
	}
	if l.OnPremisesUserPrincipalName != nil {
		u.SetOnPremisesUserPrincipalName(l.OnPremisesUserPrincipalName)
	}
	if l.AccountEnabled != nil {
		u.SetAccountEnabled(l.AccountEnabled)
	}
	return u
}
