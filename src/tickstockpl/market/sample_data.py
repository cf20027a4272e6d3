"""Reference tables for the sample market (market/sample.py): sectors, industries, names, ETFs.

Plain data only. The sectors are the eleven GICS sectors under the names AppV2's `symbols`
table uses (Morningstar-style: "Technology", "Healthcare", "Financial Services", ...); the
industries are realistic ones, some with `&` ("Oil & Gas E&P") and one present in two sectors
("Electronic Gaming & Multimedia": Technology and Communication Services).

The ETF list covers every category of contract §5.3 and each of its exclusions, and holds all
essential ETFs of the combo universe. Tickers outside the essential list are sample data,
not claims about real funds.
"""

from __future__ import annotations

# Columns of `symbols` (contract §4.1) in the order the generator fills and COPY writes them.
SYMBOL_COLUMNS = (
    "symbol", "name", "type", "active", "market_cap", "weighted_shares_outstanding", "market",
    "primary_exchange", "exchange", "sector", "industry", "sic_code", "sic_description", "list_date",
    "country", "etf_type", "issuer", "aum_millions", "expense_ratio", "inception_date", "net_assets",
    "last_updated", "last_updated_utc",
)
BAR_COLUMNS = ("symbol", "date", "open", "high", "low", "close", "volume")  # of ohlcv_daily
# Daily flat files (contract §7), in this order.
FLAT_FILE_COLUMNS = ("ticker", "volume", "open", "close", "high", "low", "window_start", "transactions")

# sector -> [(industry, relative weight, SIC code, SIC description)]
INDUSTRIES: dict[str, list[tuple[str, float, str, str]]] = {
    "Technology": [
        ("Software - Application", 10, "7372", "SERVICES-PREPACKAGED SOFTWARE"),
        ("Software - Infrastructure", 8, "7372", "SERVICES-PREPACKAGED SOFTWARE"),
        ("Semiconductors", 6, "3674", "SEMICONDUCTORS & RELATED DEVICES"),
        ("Semiconductor Equipment & Materials", 3, "3559", "SPECIAL INDUSTRY MACHINERY, NEC"),
        ("Information Technology Services", 5, "7373", "SERVICES-COMPUTER INTEGRATED SYSTEMS DESIGN"),
        ("Communication Equipment", 4, "3663", "RADIO & TV BROADCASTING & COMMUNICATIONS EQUIPMENT"),
        ("Computer Hardware", 3, "3571", "ELECTRONIC COMPUTERS"),
        ("Electronic Components", 4, "3672", "PRINTED CIRCUIT BOARDS"),
        ("Electronic Gaming & Multimedia", 5, "7372", "SERVICES-PREPACKAGED SOFTWARE"),
    ],
    "Healthcare": [
        ("Biotechnology", 18, "2836", "BIOLOGICAL PRODUCTS, (NO DIAGNOSTIC SUBSTANCES)"),
        ("Medical Devices", 6, "3841", "SURGICAL & MEDICAL INSTRUMENTS & APPARATUS"),
        ("Drug Manufacturers - General", 2, "2834", "PHARMACEUTICAL PREPARATIONS"),
        ("Drug Manufacturers - Specialty & Generic", 4, "2834", "PHARMACEUTICAL PREPARATIONS"),
        ("Diagnostics & Research", 4, "8071", "SERVICES-MEDICAL LABORATORIES"),
        ("Medical Instruments & Supplies", 4, "3845", "ELECTROMEDICAL & ELECTROTHERAPEUTIC APPARATUS"),
        ("Health Information Services", 3, "7374", "SERVICES-COMPUTER PROCESSING & DATA PREPARATION"),
        ("Healthcare Plans", 1, "6324", "HOSPITAL & MEDICAL SERVICE PLANS"),
    ],
    "Financial Services": [
        ("Banks - Regional", 16, "6022", "STATE COMMERCIAL BANKS"),
        ("Banks - Diversified", 1, "6021", "NATIONAL COMMERCIAL BANKS"),
        ("Asset Management", 6, "6282", "INVESTMENT ADVICE"),
        ("Capital Markets", 4, "6211", "SECURITY BROKERS, DEALERS & FLOTATION COMPANIES"),
        ("Insurance - Property & Casualty", 3, "6331", "FIRE, MARINE & CASUALTY INSURANCE"),
        ("Insurance - Life", 2, "6311", "LIFE INSURANCE"),
        ("Credit Services", 3, "6141", "PERSONAL CREDIT INSTITUTIONS"),
        ("Financial Data & Stock Exchanges", 1, "6200", "SECURITY & COMMODITY BROKERS, DEALERS, EXCHANGES & SERVICES"),
        ("Shell Companies", 8, "6770", "BLANK CHECKS"),
    ],
    "Consumer Cyclical": [
        ("Specialty Retail", 4, "5990", "RETAIL-RETAIL STORES, NEC"),
        ("Internet Retail", 2, "5961", "RETAIL-CATALOG & MAIL-ORDER HOUSES"),
        ("Auto Manufacturers", 2, "3711", "MOTOR VEHICLES & PASSENGER CAR BODIES"),
        ("Auto Parts", 3, "3714", "MOTOR VEHICLE PARTS & ACCESSORIES"),
        ("Restaurants", 4, "5812", "RETAIL-EATING PLACES"),
        ("Residential Construction", 2, "1531", "OPERATIVE BUILDERS"),
        ("Travel Services", 2, "4700", "TRANSPORTATION SERVICES"),
        ("Apparel Retail", 2, "5651", "RETAIL-FAMILY CLOTHING STORES"),
        ("Leisure", 2, "3949", "SPORTING & ATHLETIC GOODS, NEC"),
        ("Resorts & Casinos", 2, "7011", "HOTELS & MOTELS"),
    ],
    "Industrials": [
        ("Aerospace & Defense", 4, "3728", "AIRCRAFT PARTS & AUXILIARY EQUIPMENT, NEC"),
        ("Specialty Industrial Machinery", 5, "3560", "GENERAL INDUSTRIAL MACHINERY & EQUIPMENT"),
        ("Engineering & Construction", 3, "1600", "HEAVY CONSTRUCTION OTHER THAN BLDG CONST - CONTRACTORS"),
        ("Railroads", 1, "4011", "RAILROADS, LINE-HAUL OPERATING"),
        ("Trucking", 2, "4213", "TRUCKING (NO LOCAL)"),
        ("Building Products & Equipment", 3, "3430", "HEATING EQUIP, EXCEPT ELEC & WARM AIR; & PLUMBING FIXTURES"),
        ("Farm & Heavy Construction Machinery", 2, "3531", "CONSTRUCTION MACHINERY & EQUIP"),
        ("Airlines", 1, "4512", "AIR TRANSPORTATION, SCHEDULED"),
        ("Waste Management", 1, "4953", "REFUSE SYSTEMS"),
        ("Conglomerates", 1, "3600", "ELECTRONIC & OTHER ELECTRICAL EQUIPMENT (NO COMPUTER EQUIP)"),
    ],
    "Communication Services": [
        ("Internet Content & Information", 4, "7370", "SERVICES-COMPUTER PROGRAMMING, DATA PROCESSING, ETC."),
        ("Entertainment", 4, "7812", "SERVICES-MOTION PICTURE & VIDEO TAPE PRODUCTION"),
        ("Telecom Services", 3, "4813", "TELEPHONE COMMUNICATIONS (NO RADIOTELEPHONE)"),
        ("Advertising Agencies", 2, "7311", "SERVICES-ADVERTISING AGENCIES"),
        ("Broadcasting", 1, "4833", "TELEVISION BROADCASTING STATIONS"),
        ("Electronic Gaming & Multimedia", 2, "7372", "SERVICES-PREPACKAGED SOFTWARE"),
    ],
    "Consumer Defensive": [
        ("Packaged Foods", 4, "2000", "FOOD AND KINDRED PRODUCTS"),
        ("Beverages - Non-Alcoholic", 1, "2080", "BEVERAGES"),
        ("Household & Personal Products", 2, "2844", "PERFUMES, COSMETICS & OTHER TOILET PREPARATIONS"),
        ("Discount Stores", 1, "5331", "RETAIL-VARIETY STORES"),
        ("Grocery Stores", 1, "5411", "RETAIL-GROCERY STORES"),
        ("Farm Products", 1, "0100", "AGRICULTURAL PRODUCTION-CROPS"),
        ("Tobacco", 1, "2111", "CIGARETTES"),
    ],
    "Energy": [
        ("Oil & Gas E&P", 5, "1311", "CRUDE PETROLEUM & NATURAL GAS"),
        ("Oil & Gas Midstream", 3, "4922", "NATURAL GAS TRANSMISSION"),
        ("Oil & Gas Integrated", 1, "2911", "PETROLEUM REFINING"),
        ("Oil & Gas Equipment & Services", 3, "3533", "OIL & GAS FIELD MACHINERY & EQUIPMENT"),
        ("Uranium", 1, "1090", "MISCELLANEOUS METAL ORES"),
        ("Solar", 1, "3674", "SEMICONDUCTORS & RELATED DEVICES"),
    ],
    "Basic Materials": [
        ("Specialty Chemicals", 3, "2890", "MISCELLANEOUS CHEMICAL PRODUCTS"),
        ("Gold", 3, "1040", "GOLD AND SILVER ORES"),
        ("Steel", 1, "3312", "STEEL WORKS, BLAST FURNACES & ROLLING MILLS (COKE OVENS)"),
        ("Chemicals", 2, "2800", "CHEMICALS & ALLIED PRODUCTS"),
        ("Building Materials", 1, "3270", "CONCRETE, GYPSUM & PLASTER PRODUCTS"),
        ("Copper", 1, "1000", "METAL MINING"),
        ("Agricultural Inputs", 1, "2870", "AGRICULTURAL CHEMICALS"),
    ],
    "Real Estate": [
        ("REIT - Industrial", 1, "6798", "REAL ESTATE INVESTMENT TRUSTS"),
        ("REIT - Residential", 2, "6798", "REAL ESTATE INVESTMENT TRUSTS"),
        ("REIT - Office", 2, "6798", "REAL ESTATE INVESTMENT TRUSTS"),
        ("REIT - Retail", 2, "6798", "REAL ESTATE INVESTMENT TRUSTS"),
        ("REIT - Specialty", 1, "6798", "REAL ESTATE INVESTMENT TRUSTS"),
        ("Real Estate Services", 2, "6531", "REAL ESTATE AGENTS & MANAGERS (FOR OTHERS)"),
    ],
    "Utilities": [
        ("Utilities - Regulated Electric", 3, "4911", "ELECTRIC SERVICES"),
        ("Utilities - Regulated Gas", 1, "4923", "NATURAL GAS TRANSMISSION & DISTRIBUTION"),
        ("Utilities - Renewable", 2, "4991", "COGENERATION SERVICES & SMALL POWER PRODUCERS"),
        ("Utilities - Diversified", 1, "4931", "ELECTRIC & OTHER SERVICES COMBINED"),
    ],
}

# Words a company name is made of: "<stem> <noun> <suffix>", or "<stem> & <partner> <suffix>".
NAME_STEMS = (
    "Aster", "Beacon", "Cobalt", "Summit", "Harbor", "Granite", "Pioneer", "Meridian", "Sterling", "Apex",
    "Crescent", "Evergreen", "Keystone", "Liberty", "Northstar", "Orion", "Pinnacle", "Quantum", "Redwood",
    "Silverline", "Trident", "Unity", "Vertex", "Westbrook", "Zenith", "Atlas", "Bluewater", "Cardinal",
    "Driftwood", "Ember", "Falcon", "Glacier", "Horizon", "Ironwood", "Juniper", "Kestrel", "Lakeshore",
    "Magnolia", "Nimbus", "Oakmont", "Paragon", "Quarry", "Riverbend", "Sequoia", "Tamarack", "Upland",
    "Valor", "Willow", "Arcadia", "Brightpath", "Coastal", "Dunmore", "Eastfield", "Fairhaven", "Greystone",
    "Highland", "Jasper", "Kingsley", "Larkspur", "Midland", "Newport", "Overland", "Prairie", "Ridgeway",
    "Stonebridge", "Tidewater", "Vantage", "Whitmore", "Alder", "Birch", "Cedar", "Hawthorn", "Maple", "Spruce",
)
NAME_PARTNERS = ("Hale", "Finch", "Marsh", "Crane", "Ward", "Lowell", "Pratt", "Reed", "Sloan", "Tate", "Vance", "Wolfe")
NAME_SUFFIXES = ("Inc.", "Corp.", "Holdings, Inc.", "Group, Inc.", "Co.", "Ltd.", "Incorporated", "Corporation", "plc")
# First word of an industry (lower-case) -> nouns for company names in it.
NAME_NOUNS = {
    "software": ("Software", "Systems", "Cloud", "Data"), "semiconductors": ("Semiconductor", "Micro", "Silicon"),
    "semiconductor": ("Lithography", "Materials"), "biotechnology": ("Therapeutics", "Biosciences", "Bio", "Genomics"),
    "medical": ("Medical", "Surgical", "Health"), "drug": ("Pharmaceuticals", "Pharma"), "banks": ("Bancorp", "Bank", "Financial"),
    "insurance": ("Insurance", "Assurance", "Mutual"), "shell": ("Acquisition Corp.", "Capital Acquisition"),
    "oil": ("Energy", "Petroleum", "Resources"), "reit": ("Realty Trust", "Properties"), "utilities": ("Power", "Energy", "Utilities"),
    "gold": ("Gold", "Mining"), "restaurants": ("Restaurants", "Kitchen"), "auto": ("Motors", "Automotive"),
    "aerospace": ("Aerospace", "Defense Systems"), "electronic": ("Interactive", "Games", "Electronics"),
}
DEFAULT_NOUNS = ("Industries", "Technologies", "Enterprises", "Partners", "International", "Brands")
# Foreign issuers of ADRs (type ADRC): stem, suffix, country. Some carry non-ASCII letters.
ADR_ISSUERS = (
    ("Nordström Bergbau", "AG", "DE"), ("Müller Industrie", "AG", "DE"), ("Société Lumière", "S.A.", "FR"),
    ("Compañía Minera del Sur", "S.A.", "CL"), ("Øresund Shipping", "A/S", "DK"), ("Kaizen Denki", "K.K.", "JP"),
    ("Van der Berg Chemie", "N.V.", "NL"), ("São Paulo Energia", "S.A.", "BR"), ("Helvetia Pharma", "AG", "CH"),
    ("Thames Water Works", "plc", "GB"),
)

# Primary exchange MIC -> `exchange` column text.
EXCHANGES = {"XNAS": "NASDAQ", "XNYS": "NYSE", "XASE": "NYSE American", "ARCX": "NYSE Arca", "BATS": "Cboe BZX"}

ESSENTIAL_ETFS = (
    "SPY", "QQQ", "IWM", "VTI", "VUG", "VTV", "MTUM", "VGT", "XLK", "XLF",
    "XLV", "XLE", "XLI", "XLP", "XLY", "AGG", "BND", "VEA", "EEM", "IEFA",
)

# (ticker, name, issuer, etf_type, aum_millions, active). Essential ETFs first, then one or more
# funds per category and per exclusion of contract §5.3 (the comment says what each exercises).
CURATED_ETFS: tuple[tuple[str, str, str | None, str | None, float | None, bool], ...] = (
    ("SPY", "SPDR S&P 500 ETF Trust", "State Street", "Equity", 612000, True),
    ("QQQ", "Invesco QQQ Trust, Series 1", "Invesco", "Equity", 331000, True),
    ("IWM", "iShares Russell 2000 ETF", "BlackRock", "Equity", 71000, True),
    ("VTI", "Vanguard Total Stock Market ETF", "Vanguard", "Equity", 487000, True),
    ("VUG", "Vanguard Growth ETF", "Vanguard", "Equity", 163000, True),
    ("VTV", "Vanguard Value ETF", "Vanguard", "Equity", 134000, True),
    ("MTUM", "iShares MSCI USA Momentum Factor ETF", "BlackRock", "Equity", 15400, True),
    ("VGT", "Vanguard Information Technology ETF", "Vanguard", "Equity", 91000, True),
    ("XLK", "Technology Select Sector SPDR Fund", "State Street", "Equity", 72000, True),  # Tech; broad excluded (Sector)
    ("XLF", "Financial Select Sector SPDR Fund", "State Street", "Equity", 51000, True),  # SPDR but Sector: no category
    ("XLV", "Health Care Select Sector SPDR Fund", "State Street", "Equity", 38000, True),
    ("XLE", "Energy Select Sector SPDR Fund", "State Street", "Equity", 35000, True),
    ("XLI", "Industrial Select Sector SPDR Fund", "State Street", "Equity", 21000, True),
    ("XLP", "Consumer Staples Select Sector SPDR Fund", "State Street", "Equity", 16500, True),
    ("XLY", "Consumer Discretionary Select Sector SPDR Fund", "State Street", "Equity", 21500, True),
    ("AGG", "iShares Core U.S. Aggregate Bond ETF", "BlackRock", "Fixed Income", 121000, True),  # Core but Bond
    ("BND", "Vanguard Total Bond Market ETF", "Vanguard", "Fixed Income", 126000, True),
    ("VEA", "Vanguard FTSE Developed Markets ETF", "Vanguard", "Equity", 142000, True),
    ("EEM", "iShares MSCI Emerging Markets ETF", "BlackRock", "Equity", 19000, True),
    ("IEFA", "iShares Core MSCI EAFE ETF", "BlackRock", "Equity", 131000, True),  # Core and EAFE: broad + international
    ("IVV", "iShares Core S&P 500 ETF", "BlackRock", "Equity", 560000, True),
    ("ITOT", "iShares Core S&P Total U.S. Stock Market ETF", "BlackRock", "Equity", 68000, True),
    ("VONE", "Vanguard Russell 1000 ETF", "Vanguard", "Equity", 6100, True),
    ("VTHR", "VANGUARD RUSSELL 3000 ETF", "Vanguard", "Equity", 3200, True),  # upper case: case-insensitive match
    ("SCHB", "Schwab U.S. Broad Market ETF", "Charles Schwab", "Equity", 33000, True),  # matches no category
    ("IWF", "iShares Russell 1000 Growth ETF", "BlackRock", "Equity", 105000, True),  # Russell but Growth
    ("IWD", "iShares Russell 1000 Value ETF", "BlackRock", "Equity", 61000, True),  # Russell but Value
    ("SPYG", "SPDR Portfolio S&P 500 Growth ETF", "State Street", "Equity", 35000, True),  # S&P 500 + SPDR but Growth
    ("EFG", "iShares MSCI EAFE Growth ETF", "BlackRock", "Equity", 13000, True),  # growth + international
    ("IQDG", "WisdomTree International Quality Dividend Growth Fund", "WisdomTree", "Equity", 780, True),  # Growth but International
    ("AVDV", "Avantis International Small Cap Value ETF", "American Century", "Equity", 9500, True),  # Value but International
    ("BVAL", "Brandes Value Bond Opportunities ETF", "Brandes", "Fixed Income", 120, True),  # Value but Bond
    ("GBND", "Pacer Growth & Income Bond ETF", "Pacer", "Fixed Income", 85, True),  # Growth but Bond
    ("FTEC", "Fidelity MSCI Information Technology Index ETF", "Fidelity", "Equity", 14000, True),
    ("IGV", "iShares Expanded Tech-Software Sector ETF", "BlackRock", "Equity", 8900, True),  # whole word "Tech"
    ("TBND", "Tech Sector Corporate Bond ETF", "Sample Advisors", "Fixed Income", 45, True),  # Tech but Bond
    ("IBB", "iShares Biotechnology ETF", "BlackRock", "Equity", 6300, True),  # must NOT be Technology
    ("FBT", "First Trust NYSE Arca Biotechnology Index Fund", "First Trust", "Equity", 1100, True),
    ("FINX", "Global X FinTech ETF", "Mirae Asset", "Equity", 300, True),  # "FinTech" is not the word Tech
    ("TLT", "iShares 20+ Year Treasury Bond ETF", "BlackRock", "Fixed Income", 58000, True),
    ("LQD", "iShares iBoxx $ Investment Grade Corporate Bond ETF", "BlackRock", "Fixed Income", 31000, True),
    ("JNK", "SPDR Bloomberg High Yield Bond ETF", "State Street", "Fixed Income", 8000, True),  # SPDR but Bond
    ("SCHZ", "Schwab U.S. Aggregate Bond ETF", "Charles Schwab", "Fixed Income", 8600, True),
    ("IBDV", "iShares iBonds Dec 2030 Term Corporate ETF", "BlackRock", "Fixed Income", 1900, True),  # "iBonds" != Bond
    ("BNDX", "Vanguard Total International Bond ETF", "Vanguard", "Fixed Income", 64000, True),  # International but Bond
    ("EMB", "iShares J.P. Morgan USD Emerging Markets Bond ETF", "BlackRock", "Fixed Income", 15000, True),
    ("VXUS", "Vanguard Total International Stock ETF", "Vanguard", "Equity", 84000, True),
    ("IXUS", "iShares Core MSCI Total International Stock ETF", "BlackRock", "Equity", 41000, True),  # Core but International
    ("IEMG", "iShares Core MSCI Emerging Markets ETF", "BlackRock", "Equity", 82000, True),  # Core but Emerging
    ("EFA", "iShares MSCI EAFE ETF", "BlackRock", "Equity", 54000, True),
    ("VWO", "Vanguard FTSE Emerging Markets ETF", "Vanguard", "Equity", 83000, True),
    ("SCHF", "Schwab International Equity ETF", "Charles Schwab", "Equity", 45000, True),
    ("QUAL", "iShares MSCI USA Quality Factor ETF", "BlackRock", "Equity", 47000, True),
    ("USMV", "iShares MSCI USA Min Vol Factor ETF", "BlackRock", "Equity", 24000, True),
    ("LOVL", "Sample Advisors U.S. Low Vol ETF", "Sample Advisors", "Equity", 60, True),
    ("SPLV", "Invesco S&P 500 Low Volatility ETF", "Invesco", "Equity", 7600, True),  # "Low Volatility" != "Low Vol"
    ("FCTR", "First Trust Lunt U.S. Factor Rotation ETF", "First Trust", "Equity", 60, True),
    ("SGRO", "sample growth leaders etf", None, None, 12, True),  # lower-case name; no issuer, type
    ("OLDT", "Legacy Technology Leaders ETF", "Sample Advisors", "Equity", 30, False),  # inactive: in no category
)

# Building blocks of the generated (non-curated) ETFs: brand -> issuer, and themes with their type.
ETF_BRANDS = (
    ("iShares", "BlackRock"), ("Vanguard", "Vanguard"), ("SPDR", "State Street"), ("Invesco", "Invesco"),
    ("Schwab", "Charles Schwab"), ("First Trust", "First Trust"), ("Global X", "Mirae Asset"),
    ("VanEck", "VanEck"), ("ProShares", "ProShares"), ("WisdomTree", "WisdomTree"), ("Direxion", "Direxion"),
    ("Fidelity", "Fidelity"), ("JPMorgan", "J.P. Morgan"), ("Dimensional", "Dimensional"),
    ("Avantis", "American Century"), ("Pacer", "Pacer"), ("Amplify", "Amplify"), ("Roundhill", "Roundhill"),
)
ETF_THEMES = (
    ("S&P 500", "Equity"), ("Russell 2000", "Equity"), ("Total Market", "Equity"), ("Large-Cap Growth", "Equity"),
    ("Small-Cap Value", "Equity"), ("Dividend Growth", "Equity"), ("High Dividend", "Equity"),
    ("Technology", "Equity"), ("Information Technology", "Equity"), ("Biotechnology", "Equity"),
    ("Semiconductor", "Equity"), ("Cybersecurity", "Equity"), ("Cloud Computing", "Equity"),
    ("Clean Energy", "Equity"), ("Gold Miners", "Equity"), ("Regional Banks", "Equity"), ("Real Estate", "Equity"),
    ("Aggregate Bond", "Fixed Income"), ("Treasury Bond", "Fixed Income"), ("Municipal Bond", "Fixed Income"),
    ("Corporate Bond", "Fixed Income"), ("High Yield Bond", "Fixed Income"), ("Emerging Markets", "Equity"),
    ("International Developed Markets", "Equity"), ("EAFE", "Equity"), ("Momentum", "Equity"),
    ("Quality", "Equity"), ("Min Vol", "Equity"), ("Low Vol", "Equity"), ("Multifactor", "Equity"),
    ("Gold Trust", "Commodity"), ("Crude Oil", "Commodity"), ("Bitcoin Strategy", "Currency"),
    ("Covered Call", "Equity"), ("Equal Weight", "Equity"), ("2x Leveraged Nasdaq-100", "Leveraged"),
    ("Ultra Short S&P 500", "Inverse"), ("Healthcare", "Equity"), ("Consumer Staples", "Equity"),
)
ETF_MODIFIERS = ("", "", "", "U.S.", "Global", "Enhanced", "ESG", "Select", "Strategic", "Target", "Core")
ETF_SUFFIXES = ("ETF", "ETF", "ETF", "Index ETF", "Fund", "Trust")
