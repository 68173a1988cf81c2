package schedule

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-ical"
)

// LoadZone resolves a TZID as calendars write it: an IANA name
// ("Europe/Berlin"), a Windows name as Outlook and Exchange export it
// ("W. Europe Standard Time", matched case-insensitively) or an IANA name
// behind a vendor prefix ("/mozilla.org/20050126_1/Europe/Berlin"). An empty,
// machine-dependent ("Local") or unknown name is an error: a schedule is never
// silently moved to UTC.
func LoadZone(name string) (*time.Location, error) {
	name = strings.TrimSpace(strings.Trim(strings.TrimSpace(name), `"`))
	if name == "" || strings.EqualFold(name, "Local") {
		return nil, fmt.Errorf("unknown time zone %q", name)
	}
	if loc, err := time.LoadLocation(name); err == nil {
		return loc, nil
	}
	if iana, ok := calWindowsZone(name); ok {
		loc, err := time.LoadLocation(iana)
		if err != nil {
			return nil, fmt.Errorf("load time zone %q (Windows %q): %w", iana, name, err)
		}
		return loc, nil
	}
	// Vendor-prefixed IANA names: try the last two and three path elements.
	if strings.HasPrefix(name, "/") {
		parts := strings.Split(strings.Trim(name, "/"), "/")
		for n := 2; n <= 3 && n <= len(parts); n++ {
			if loc, err := time.LoadLocation(strings.Join(parts[len(parts)-n:], "/")); err == nil {
				return loc, nil
			}
		}
	}
	return nil, fmt.Errorf("unknown time zone %q", name)
}

// calWindowsZone maps a Windows time zone name to its IANA zone.
func calWindowsZone(name string) (string, bool) {
	if iana, ok := calWindowsZones[name]; ok {
		return iana, true
	}
	for win, iana := range calWindowsZones {
		if strings.EqualFold(win, name) {
			return iana, true
		}
	}
	return "", false
}

// calZones resolves the TZIDs of one calendar: known names through LoadZone,
// others through the calendar's own VTIMEZONE definitions. It caches, so that
// every property naming a zone shares one *time.Location.
type calZones struct {
	defs  map[string]*ical.Component // VTIMEZONE by TZID
	cache map[string]*time.Location
}

func newCalZones(cal *ical.Calendar) *calZones {
	z := &calZones{defs: map[string]*ical.Component{}, cache: map[string]*time.Location{}}
	for _, child := range cal.Children {
		if child.Name != ical.CompTimezone {
			continue
		}
		tzid := ""
		if p := child.Props.Get(ical.PropTimezoneID); p != nil {
			tzid = strings.TrimSpace(p.Value)
		}
		if _, dup := z.defs[tzid]; tzid != "" && !dup {
			z.defs[tzid] = child
		}
	}
	return z
}

// resolve prefers the IANA zone for a known name (IANA or Windows) and
// builds the zone from the calendar's VTIMEZONE otherwise.
func (z *calZones) resolve(tzid string) (*time.Location, error) {
	tzid = strings.TrimSpace(strings.Trim(strings.TrimSpace(tzid), `"`))
	if loc, ok := z.cache[tzid]; ok {
		return loc, nil
	}
	loc, err := LoadZone(tzid)
	if err != nil {
		def, ok := z.defs[tzid]
		if !ok {
			return nil, err
		}
		if loc, err = calZoneFromVTimezone(tzid, def); err != nil {
			return nil, err
		}
	}
	z.cache[tzid] = loc
	return loc, nil
}

// calObservance is one STANDARD or DAYLIGHT block of a VTIMEZONE.
type calObservance struct {
	daylight bool
	start    time.Time // DTSTART, local wall time before the change
	offset   int       // TZOFFSETTO, seconds east of UTC
	name     string    // TZNAME
	rule     string    // RRULE ("" when none)
}

// calZoneFromVTimezone builds a location from a VTIMEZONE that names no
// known zone (Outlook's "Customized Time Zone", display names). The current
// rule is taken: the latest STANDARD and DAYLIGHT observances, which must
// recur yearly on an n-th or last weekday of a month (every zone in use
// today does); a zone without open-ended DAYLIGHT rules is a fixed offset.
// The location is made from a TZif blob whose POSIX TZ footer carries the
// rule, so time.Date and Time.In handle its transitions like any IANA zone.
func calZoneFromVTimezone(tzid string, vtz *ical.Component) (*time.Location, error) {
	var std, dst *calObservance
	for _, child := range vtz.Children {
		if child.Name != ical.CompTimezoneStandard && child.Name != ical.CompTimezoneDaylight {
			continue
		}
		obs, err := calParseObservance(child)
		if err != nil {
			return nil, fmt.Errorf("time zone %q: %w", tzid, err)
		}
		latest := &std
		if obs.daylight {
			latest = &dst
		}
		if *latest == nil || !obs.start.Before((*latest).start) {
			*latest = obs
		}
	}
	if std == nil && dst == nil {
		return nil, fmt.Errorf("unknown time zone %q: VTIMEZONE has no STANDARD or DAYLIGHT", tzid)
	}
	if std == nil || dst == nil || !calOpenYearly(std.rule) || !calOpenYearly(dst.rule) {
		latest := std
		if latest == nil || (dst != nil && dst.start.After(std.start)) {
			latest = dst
		}
		footer := calPosixName(latest.name, latest.offset) + calPosixOffset(latest.offset)
		return calLocation(tzid, footer, latest.offset, latest.offset)
	}
	startRule, err := calPosixRule(dst)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q: %w", tzid, err)
	}
	endRule, err := calPosixRule(std)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q: %w", tzid, err)
	}
	footer := calPosixName(std.name, std.offset) + calPosixOffset(std.offset) +
		calPosixName(dst.name, dst.offset) + calPosixOffset(dst.offset) +
		"," + startRule + "," + endRule
	return calLocation(tzid, footer, std.offset, std.offset, dst.offset)
}

func calParseObservance(c *ical.Component) (*calObservance, error) {
	obs := &calObservance{daylight: c.Name == ical.CompTimezoneDaylight}
	p := c.Props.Get(ical.PropDateTimeStart)
	if p == nil {
		return nil, fmt.Errorf("%s without DTSTART", c.Name)
	}
	start, err := time.Parse("20060102T150405", strings.TrimSpace(p.Value))
	if err != nil {
		return nil, fmt.Errorf("%s DTSTART %q: %w", c.Name, p.Value, err)
	}
	obs.start = start
	p = c.Props.Get(ical.PropTimezoneOffsetTo)
	if p == nil {
		return nil, fmt.Errorf("%s without TZOFFSETTO", c.Name)
	}
	if obs.offset, err = calParseUTCOffset(p.Value); err != nil {
		return nil, fmt.Errorf("%s TZOFFSETTO: %w", c.Name, err)
	}
	if p := c.Props.Get(ical.PropTimezoneName); p != nil {
		obs.name = p.Value
	}
	if p := c.Props.Get(ical.PropRecurrenceRule); p != nil {
		obs.rule = strings.ToUpper(strings.TrimSpace(p.Value))
	}
	return obs, nil
}

// calParseUTCOffset parses a UTC offset value: +HHMM, -HHMM or ±HHMMSS.
func calParseUTCOffset(s string) (int, error) {
	s = strings.TrimSpace(s)
	if (len(s) != 5 && len(s) != 7) || (s[0] != '+' && s[0] != '-') {
		return 0, fmt.Errorf("invalid UTC offset %q", s)
	}
	var parts [3]int
	for i := 0; 1+2*i < len(s); i++ {
		n, err := strconv.Atoi(s[1+2*i : 3+2*i])
		if err != nil || n < 0 {
			return 0, fmt.Errorf("invalid UTC offset %q", s)
		}
		parts[i] = n
	}
	if parts[0] > 23 || parts[1] > 59 || parts[2] > 59 {
		return 0, fmt.Errorf("invalid UTC offset %q", s)
	}
	off := parts[0]*3600 + parts[1]*60 + parts[2]
	if s[0] == '-' {
		off = -off
	}
	return off, nil
}

// calOpenYearly reports whether a VTIMEZONE RRULE recurs yearly forever.
func calOpenYearly(rule string) bool {
	if rule == "" {
		return false
	}
	parts := calRuleParts(rule)
	return parts["FREQ"] == "YEARLY" && parts["UNTIL"] == "" && parts["COUNT"] == ""
}

func calRuleParts(rule string) map[string]string {
	parts := map[string]string{}
	for _, kv := range strings.Split(rule, ";") {
		k, v, _ := strings.Cut(kv, "=")
		parts[strings.ToUpper(strings.TrimSpace(k))] = strings.ToUpper(strings.TrimSpace(v))
	}
	return parts
}

// calPosixRule turns an observance's yearly RRULE into a POSIX TZ rule
// "Mm.w.d/time": BYMONTH with BYDAY=nSU or -1SU, or BYDAY=SU with seven
// consecutive BYMONTHDAY values (the RFC 2445 style), or a fixed BYMONTHDAY.
func calPosixRule(obs *calObservance) (string, error) {
	parts := calRuleParts(obs.rule)
	month, err := strconv.Atoi(parts["BYMONTH"])
	if err != nil || month < 1 || month > 12 {
		return "", fmt.Errorf("RRULE %q: need one BYMONTH", obs.rule)
	}
	at := obs.start.Hour()*3600 + obs.start.Minute()*60 + obs.start.Second()
	when := fmt.Sprintf("/%d:%02d:%02d", at/3600, at/60%60, at%60)
	byDay, byMonthDay := parts["BYDAY"], parts["BYMONTHDAY"]
	if byDay == "" {
		day, err := strconv.Atoi(byMonthDay)
		if err != nil || day < 1 || day > calDaysIn(2001, time.Month(month)) {
			return "", fmt.Errorf("RRULE %q: need BYDAY or one BYMONTHDAY", obs.rule)
		}
		// Julian day of a non-leap year, as POSIX "Jn" counts it.
		return fmt.Sprintf("J%d%s", time.Date(2001, time.Month(month), day, 0, 0, 0, 0, time.UTC).YearDay(), when), nil
	}
	if len(byDay) < 2 || strings.Contains(byDay, ",") {
		return "", fmt.Errorf("RRULE %q: need one BYDAY", obs.rule)
	}
	wd, ok := calWeekdays[byDay[len(byDay)-2:]]
	if !ok {
		return "", fmt.Errorf("RRULE %q: bad BYDAY", obs.rule)
	}
	week := 0
	if ord := byDay[:len(byDay)-2]; ord != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(ord, "+"))
		switch {
		case err != nil:
			return "", fmt.Errorf("RRULE %q: bad BYDAY", obs.rule)
		case n == -1 || n == 5:
			week = 5
		case n >= 1 && n <= 4:
			week = n
		default:
			return "", fmt.Errorf("RRULE %q: BYDAY %q has no POSIX form", obs.rule, byDay)
		}
	} else {
		days := strings.Split(byMonthDay, ",")
		first, err := strconv.Atoi(days[0])
		if err != nil || len(days) != 7 {
			return "", fmt.Errorf("RRULE %q: BYDAY without ordinal needs seven BYMONTHDAY", obs.rule)
		}
		switch {
		case first >= 1 && first <= 22 && (first-1)%7 == 0:
			week = (first-1)/7 + 1
		case first == -7 || (first >= 22 && first <= 25):
			week = 5
		default:
			return "", fmt.Errorf("RRULE %q: BYMONTHDAY %q has no POSIX form", obs.rule, byMonthDay)
		}
	}
	return fmt.Sprintf("M%d.%d.%d%s", month, week, int(wd), when), nil
}

// calPosixName quotes a zone abbreviation for a POSIX TZ string, falling
// back to the offset when TZNAME is missing or unusable.
func calPosixName(name string, offset int) string {
	clean := strings.Map(func(r rune) rune {
		if r < 128 && (r == '+' || r == '-' || r >= '0' && r <= '9' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z') {
			return r
		}
		return -1
	}, name)
	if len(clean) < 3 || len(clean) > 16 {
		sign, off := '+', offset
		if off < 0 {
			sign, off = '-', -off
		}
		clean = fmt.Sprintf("%c%02d%02d", sign, off/3600, off/60%60)
	}
	return "<" + clean + ">"
}

// calPosixOffset writes an offset east of UTC the POSIX way (west positive).
func calPosixOffset(offset int) string {
	west := -offset
	sign := ""
	if west < 0 {
		sign, west = "-", -west
	}
	return fmt.Sprintf("%s%d:%02d:%02d", sign, west/3600, west/60%60, west%60)
}

// calLocation builds a location from a TZif version 2 blob with no
// transitions, one local time type and the rule in the footer.
func calLocation(name string, footer string, offset int, offsets ...int) (*time.Location, error) {
	abbr := []byte("LMT\x00")
	block := func(b []byte) []byte {
		b = append(b, "TZif2"...)
		b = append(b, make([]byte, 15)...)
		// isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt
		for _, n := range []uint32{0, 0, 0, 0, 1, uint32(len(abbr))} {
			b = binary.BigEndian.AppendUint32(b, n)
		}
		b = binary.BigEndian.AppendUint32(b, uint32(int32(offset)))
		b = append(b, 0, 0) // isdst, abbreviation index
		return append(b, abbr...)
	}
	data := block(nil) // version 1 data, skipped by readers of version 2
	data = block(data) // version 2 data
	data = append(data, '\n')
	data = append(data, footer...)
	data = append(data, '\n')
	loc, err := time.LoadLocationFromTZData(name, data)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q: build from VTIMEZONE (%s): %w", name, footer, err)
	}
	// Go checks the footer only when it uses it, and falls back to the
	// fixed offset when it is bad: make sure every offset shows up in a year.
	seen := map[int]bool{}
	for m := time.January; m <= time.December; m++ {
		_, off := time.Date(2001, m, 15, 12, 0, 0, 0, loc).Zone()
		seen[off] = true
	}
	for _, off := range offsets {
		if !seen[off] {
			return nil, fmt.Errorf("unknown time zone %q: rule %q does not yield offset %d", name, footer, off)
		}
	}
	return loc, nil
}

// calWindowsZones maps Windows time zone names to IANA zones (CLDR
// windowsZones.xml, territory "001"; the same table Go's time package
// derives its Windows abbreviations from).
var calWindowsZones = map[string]string{
	"Egypt Standard Time":             "Africa/Cairo",
	"Morocco Standard Time":           "Africa/Casablanca",
	"South Africa Standard Time":      "Africa/Johannesburg",
	"South Sudan Standard Time":       "Africa/Juba",
	"Sudan Standard Time":             "Africa/Khartoum",
	"W. Central Africa Standard Time": "Africa/Lagos",
	"E. Africa Standard Time":         "Africa/Nairobi",
	"Sao Tome Standard Time":          "Africa/Sao_Tome",
	"Libya Standard Time":             "Africa/Tripoli",
	"Namibia Standard Time":           "Africa/Windhoek",
	"Aleutian Standard Time":          "America/Adak",
	"Alaskan Standard Time":           "America/Anchorage",
	"Tocantins Standard Time":         "America/Araguaina",
	"Paraguay Standard Time":          "America/Asuncion",
	"Bahia Standard Time":             "America/Bahia",
	"SA Pacific Standard Time":        "America/Bogota",
	"Argentina Standard Time":         "America/Buenos_Aires",
	"Eastern Standard Time (Mexico)":  "America/Cancun",
	"Venezuela Standard Time":         "America/Caracas",
	"SA Eastern Standard Time":        "America/Cayenne",
	"Central Standard Time":           "America/Chicago",
	"Central Brazilian Standard Time": "America/Cuiaba",
	"Mountain Standard Time":          "America/Denver",
	"Greenland Standard Time":         "America/Godthab",
	"Turks And Caicos Standard Time":  "America/Grand_Turk",
	"Central America Standard Time":   "America/Guatemala",
	"Atlantic Standard Time":          "America/Halifax",
	"Cuba Standard Time":              "America/Havana",
	"US Eastern Standard Time":        "America/Indianapolis",
	"SA Western Standard Time":        "America/La_Paz",
	"Pacific Standard Time":           "America/Los_Angeles",
	"Mountain Standard Time (Mexico)": "America/Mazatlan",
	"Central Standard Time (Mexico)":  "America/Mexico_City",
	"Saint Pierre Standard Time":      "America/Miquelon",
	"Montevideo Standard Time":        "America/Montevideo",
	"Eastern Standard Time":           "America/New_York",
	"US Mountain Standard Time":       "America/Phoenix",
	"Haiti Standard Time":             "America/Port-au-Prince",
	"Magallanes Standard Time":        "America/Punta_Arenas",
	"Canada Central Standard Time":    "America/Regina",
	"Pacific SA Standard Time":        "America/Santiago",
	"E. South America Standard Time":  "America/Sao_Paulo",
	"Newfoundland Standard Time":      "America/St_Johns",
	"Pacific Standard Time (Mexico)":  "America/Tijuana",
	"Yukon Standard Time":             "America/Whitehorse",
	"Jordan Standard Time":            "Asia/Amman",
	"Arabic Standard Time":            "Asia/Baghdad",
	"Azerbaijan Standard Time":        "Asia/Baku",
	"SE Asia Standard Time":           "Asia/Bangkok",
	"Altai Standard Time":             "Asia/Barnaul",
	"Middle East Standard Time":       "Asia/Beirut",
	"Central Asia Standard Time":      "Asia/Bishkek",
	"India Standard Time":             "Asia/Calcutta",
	"Transbaikal Standard Time":       "Asia/Chita",
	"Sri Lanka Standard Time":         "Asia/Colombo",
	"Syria Standard Time":             "Asia/Damascus",
	"Bangladesh Standard Time":        "Asia/Dhaka",
	"Arabian Standard Time":           "Asia/Dubai",
	"West Bank Standard Time":         "Asia/Hebron",
	"W. Mongolia Standard Time":       "Asia/Hovd",
	"North Asia East Standard Time":   "Asia/Irkutsk",
	"Israel Standard Time":            "Asia/Jerusalem",
	"Afghanistan Standard Time":       "Asia/Kabul",
	"Russia Time Zone 11":             "Asia/Kamchatka",
	"Pakistan Standard Time":          "Asia/Karachi",
	"Nepal Standard Time":             "Asia/Katmandu",
	"North Asia Standard Time":        "Asia/Krasnoyarsk",
	"Magadan Standard Time":           "Asia/Magadan",
	"N. Central Asia Standard Time":   "Asia/Novosibirsk",
	"Omsk Standard Time":              "Asia/Omsk",
	"North Korea Standard Time":       "Asia/Pyongyang",
	"Qyzylorda Standard Time":         "Asia/Qyzylorda",
	"Myanmar Standard Time":           "Asia/Rangoon",
	"Arab Standard Time":              "Asia/Riyadh",
	"Sakhalin Standard Time":          "Asia/Sakhalin",
	"Korea Standard Time":             "Asia/Seoul",
	"China Standard Time":             "Asia/Shanghai",
	"Singapore Standard Time":         "Asia/Singapore",
	"Russia Time Zone 10":             "Asia/Srednekolymsk",
	"Taipei Standard Time":            "Asia/Taipei",
	"West Asia Standard Time":         "Asia/Tashkent",
	"Georgian Standard Time":          "Asia/Tbilisi",
	"Iran Standard Time":              "Asia/Tehran",
	"Tokyo Standard Time":             "Asia/Tokyo",
	"Tomsk Standard Time":             "Asia/Tomsk",
	"Ulaanbaatar Standard Time":       "Asia/Ulaanbaatar",
	"Vladivostok Standard Time":       "Asia/Vladivostok",
	"Yakutsk Standard Time":           "Asia/Yakutsk",
	"Ekaterinburg Standard Time":      "Asia/Yekaterinburg",
	"Caucasus Standard Time":          "Asia/Yerevan",
	"Azores Standard Time":            "Atlantic/Azores",
	"Cape Verde Standard Time":        "Atlantic/Cape_Verde",
	"Greenwich Standard Time":         "Atlantic/Reykjavik",
	"Cen. Australia Standard Time":    "Australia/Adelaide",
	"E. Australia Standard Time":      "Australia/Brisbane",
	"AUS Central Standard Time":       "Australia/Darwin",
	"Aus Central W. Standard Time":    "Australia/Eucla",
	"Tasmania Standard Time":          "Australia/Hobart",
	"Lord Howe Standard Time":         "Australia/Lord_Howe",
	"W. Australia Standard Time":      "Australia/Perth",
	"AUS Eastern Standard Time":       "Australia/Sydney",
	"UTC-11":                          "Etc/GMT+11",
	"Dateline Standard Time":          "Etc/GMT+12",
	"UTC-02":                          "Etc/GMT+2",
	"UTC-08":                          "Etc/GMT+8",
	"UTC-09":                          "Etc/GMT+9",
	"UTC+12":                          "Etc/GMT-12",
	"UTC+13":                          "Etc/GMT-13",
	"UTC":                             "Etc/UTC",
	"Astrakhan Standard Time":         "Europe/Astrakhan",
	"W. Europe Standard Time":         "Europe/Berlin",
	"GTB Standard Time":               "Europe/Bucharest",
	"Central Europe Standard Time":    "Europe/Budapest",
	"E. Europe Standard Time":         "Europe/Chisinau",
	"Turkey Standard Time":            "Europe/Istanbul",
	"Kaliningrad Standard Time":       "Europe/Kaliningrad",
	"FLE Standard Time":               "Europe/Kiev",
	"GMT Standard Time":               "Europe/London",
	"Belarus Standard Time":           "Europe/Minsk",
	"Russian Standard Time":           "Europe/Moscow",
	"Romance Standard Time":           "Europe/Paris",
	"Russia Time Zone 3":              "Europe/Samara",
	"Saratov Standard Time":           "Europe/Saratov",
	"Volgograd Standard Time":         "Europe/Volgograd",
	"Central European Standard Time":  "Europe/Warsaw",
	"Mauritius Standard Time":         "Indian/Mauritius",
	"Samoa Standard Time":             "Pacific/Apia",
	"New Zealand Standard Time":       "Pacific/Auckland",
	"Bougainville Standard Time":      "Pacific/Bougainville",
	"Chatham Islands Standard Time":   "Pacific/Chatham",
	"Easter Island Standard Time":     "Pacific/Easter",
	"Fiji Standard Time":              "Pacific/Fiji",
	"Central Pacific Standard Time":   "Pacific/Guadalcanal",
	"Hawaiian Standard Time":          "Pacific/Honolulu",
	"Line Islands Standard Time":      "Pacific/Kiritimati",
	"Marquesas Standard Time":         "Pacific/Marquesas",
	"Norfolk Standard Time":           "Pacific/Norfolk",
	"West Pacific Standard Time":      "Pacific/Port_Moresby",
	"Tonga Standard Time":             "Pacific/Tongatapu",
}
