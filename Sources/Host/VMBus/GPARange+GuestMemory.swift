import VMBusProtocol

extension GuestMemoryAccess {
    /// The first PFN of `ranges` whose page is not guest RAM (or cannot be an address at all), nil
    /// when every page is. The one check GPA-direct packets and GPADLs pass before a VSP sees them.
    public func firstPageOutsideRAM(_ ranges: [GPARange]) -> UInt64? {
        for range in ranges {
            for pfn in range.pfns where pfn > UInt64.max >> 12 || !isRAM(pfn << 12, length: UInt64(GPARange.pageSize)) {
                return pfn
            }
        }
        return nil
    }
}
