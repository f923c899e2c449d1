import CorralModel

/// Why devices could not be prepared for a VM.
public enum DeviceAssignmentError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Reading `/sys/bus/pci/devices` failed.
    case scan(KernelFileError)
    /// A rule refused (no IOMMU, group not viable, held by another VM…): nothing was changed.
    case refused(DeviceRefusal)
    /// A bind failed; the devices bound before it were put back (`undoFailures`: those that could not be).
    case bind(VFIOBindError, undoFailures: [VFIOBindError])

    public var description: String {
        switch self {
        case .scan(let cause): return cause.description
        case .refused(let refusal): return refusal.description
        case .bind(let cause, let undo):
            return cause.description + undo.map { "; undoing an earlier bind failed: \($0)" }.joined()
        }
    }
}

/// Prepares the host's PCI devices for a VM: scans, checks the rules (`AssignmentRules.plan`), binds each device to
/// vfio-pci; all or nothing. The caller persists the records and hands them to `release` when the VM is gone. Keep
/// the first records: assigning a device that is already on vfio-pci records `vfio-pci` as its original driver, so
/// a VM that holds its devices must not be assigned them again (after a daemon restart, read the saved records).
public struct DeviceAssignment: Sendable {
    public let tree: any SysfsTree
    public let binder: any PCIDeviceBinding

    public init(tree: any SysfsTree, binder: any PCIDeviceBinding) {
        self.tree = tree
        self.binder = binder
    }

    /// Binds `requested` (every function of their slots with `allFunctions`) for `vm`; `holders`: device → VM of
    /// the devices VMs hold now. On a failure the devices bound so far are put back before the error is thrown.
    public func assign(_ requested: [PCIAddress], allFunctions: Bool, to vm: String,
                       holders: [PCIAddress: String]) async throws(DeviceAssignmentError) -> [BindRecord] {
        let inventory: PCIInventory
        do { inventory = try PCIInventory.scan(tree) } catch { throw .scan(error) }
        let devices: [PCIAddress]
        do {
            devices = try AssignmentRules.plan(requested, allFunctions: allFunctions, for: vm, holders: holders,
                                               in: inventory)
        } catch {
            throw .refused(error)
        }
        var records: [BindRecord] = []
        for device in devices {
            do {
                records.append(try await binder.bind(device))
            } catch {
                throw .bind(error, undoFailures: release(records))
            }
        }
        return records
    }

    /// Puts every device of `records` back, last bound first; returns the failures (the others were restored).
    @discardableResult
    public func release(_ records: [BindRecord]) -> [VFIOBindError] {
        var failures: [VFIOBindError] = []
        for record in records.reversed() {
            do { try binder.restore(record) } catch { failures.append(error) }
        }
        return failures
    }
}
