/// A small, bounded XML parser for the documents `corral import` reads (libvirt domain XML, OVF envelopes).
///
/// What it reads: the XML declaration, comments, processing instructions, elements with attributes, character data
/// with the five predefined entities (`&lt; &gt; &amp; &apos; &quot;`) and numeric character references, and CDATA
/// sections. Namespaces are resolved (`xmlns`, `xmlns:p`): each element and attribute keeps the name as written and
/// knows its prefix, local name and namespace URI.
///
/// What it refuses, with an error naming line and column: document type declarations and entity declarations (no
/// DTD, so no external entities and no entity expansion), any other named entity, malformed markup, mismatched tags,
/// duplicate attributes, unbound prefixes, bad UTF-8 and characters XML does not allow, and anything past
/// `XMLLimits`. It never crashes and never recurses, whatever the input.
public struct XMLDocument: Sendable, Equatable {
    public var root: XMLElement

    public init(root: XMLElement) { self.root = root }

    /// Parses a document from its text.
    public static func parse(_ text: String, limits: XMLLimits = .standard) throws(XMLError) -> XMLDocument {
        try parse(bytes: Array(text.utf8), limits: limits)
    }

    /// Parses a document from its bytes (UTF-8, with or without a byte order mark).
    public static func parse(bytes: [UInt8], limits: XMLLimits = .standard) throws(XMLError) -> XMLDocument {
        var parser = XMLParser(bytes: bytes, limits: limits)
        return XMLDocument(root: try parser.parseDocument())
    }
}

/// An element: its name as written (`ovf:Envelope`), its attributes in document order, the character data directly
/// inside it (CDATA included, child elements' text not), its child elements and where it starts.
public struct XMLElement: Sendable, Equatable {
    /// The qualified name as written: `rasd:ResourceType`, `domain`.
    public var name: String
    /// The namespace URI the element's prefix (or the default namespace) is bound to; nil when none.
    public var namespace: String?
    public var attributes: [XMLAttribute]
    /// Character data directly inside the element, entities replaced, line ends normalised to `\n`.
    public var text: String
    public var children: [XMLElement]
    /// 1-based line and column of the element's `<`.
    public var line: Int
    public var column: Int

    public init(name: String, namespace: String? = nil, attributes: [XMLAttribute] = [], text: String = "",
                children: [XMLElement] = [], line: Int = 0, column: Int = 0) {
        self.name = name
        self.namespace = namespace
        self.attributes = attributes
        self.text = text
        self.children = children
        self.line = line
        self.column = column
    }

    /// The part of the name before `:`; nil without one.
    public var prefix: String? { XMLName.split(name).prefix }
    /// The name without its prefix: `ResourceType` for `rasd:ResourceType`.
    public var localName: String { XMLName.split(name).local }

    /// `text` without leading and trailing whitespace.
    public var trimmedText: String { XMLName.trimmed(text) }

    /// The value of the attribute written with exactly this qualified name (`type`, `ovf:id`).
    public func attribute(_ name: String) -> String? {
        attributes.first { $0.name == name }?.value
    }

    /// The value of the attribute with this local name in this namespace (nil: an unprefixed attribute).
    public func attribute(local: String, namespace: String?) -> String? {
        attributes.first { $0.localName == local && $0.namespace == namespace }?.value
    }

    /// Child elements with this qualified name, in document order.
    public func children(named name: String) -> [XMLElement] {
        children.filter { $0.name == name }
    }

    /// The first child element with this qualified name.
    public func child(_ name: String) -> XMLElement? {
        children.first { $0.name == name }
    }

    /// Child elements with this local name (any prefix), optionally in one namespace.
    public func children(local: String, namespace: String? = nil) -> [XMLElement] {
        children.filter { $0.localName == local && (namespace == nil || $0.namespace == namespace) }
    }
}

/// An attribute as written (`ovf:id="vm"`), with where it starts.
public struct XMLAttribute: Sendable, Equatable {
    public var name: String
    /// The namespace of the attribute's prefix; nil for an unprefixed attribute (XML namespaces give those none).
    public var namespace: String?
    /// The value, entities replaced and whitespace characters normalised to spaces (XML attribute normalisation).
    public var value: String
    public var line: Int
    public var column: Int

    public init(name: String, namespace: String? = nil, value: String, line: Int = 0, column: Int = 0) {
        self.name = name
        self.namespace = namespace
        self.value = value
        self.line = line
        self.column = column
    }

    public var prefix: String? { XMLName.split(name).prefix }
    public var localName: String { XMLName.split(name).local }
}

/// How much a document may be. The defaults are far above any libvirt domain or OVF envelope (a few hundred
/// elements, a dozen levels) and far below what would hurt.
public struct XMLLimits: Sendable, Equatable {
    /// The document's size in bytes.
    public var bytes: Int
    /// Elements nested in one another (the root is depth 1).
    public var depth: Int
    /// Elements in the whole document.
    public var elements: Int
    /// Attributes on one element.
    public var attributesPerElement: Int
    /// Attributes in the whole document.
    public var attributes: Int
    /// Length in bytes of an element or attribute name (prefix included).
    public var nameLength: Int
    /// Length in bytes of one attribute value.
    public var attributeValueLength: Int

    public init(bytes: Int = 4 << 20, depth: Int = 64, elements: Int = 100_000, attributesPerElement: Int = 256,
                attributes: Int = 400_000, nameLength: Int = 256, attributeValueLength: Int = 64 << 10) {
        self.bytes = bytes
        self.depth = depth
        self.elements = elements
        self.attributesPerElement = attributesPerElement
        self.attributes = attributes
        self.nameLength = nameLength
        self.attributeValueLength = attributeValueLength
    }

    public static let standard = XMLLimits()
}

/// Why a document was refused, and where (1-based line and column; the column counts characters).
public struct XMLError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable, Equatable, CaseIterable {
        case tooLarge, tooDeep, tooManyElements, tooManyAttributes, nameTooLong, valueTooLong
        /// `<!DOCTYPE`: no DTDs at all (external entities, entity expansion).
        case doctype
        /// `<!ENTITY` (outside a DOCTYPE, which is refused before).
        case entityDeclaration
        /// `&name;` other than the five predefined entities.
        case undefinedEntity
        case badCharacterReference
        case mismatchedTag
        case duplicateAttribute
        case unboundPrefix
        case invalidUTF8
        /// A character XML does not allow (control characters, NUL).
        case invalidCharacter
        case unexpectedEnd
        case noRootElement
        case contentAfterRoot
        case syntax
    }

    public var kind: Kind
    public var line: Int
    public var column: Int
    public var message: String

    public init(kind: Kind, line: Int, column: Int, message: String) {
        self.kind = kind
        self.line = line
        self.column = column
        self.message = message
    }

    /// `LINE:COL: message`.
    public var description: String { "\(line):\(column): \(message)" }
}

enum XMLName {
    static func split(_ name: String) -> (prefix: String?, local: String) {
        guard let colon = name.firstIndex(of: ":") else { return (nil, name) }
        return (String(name[..<colon]), String(name[name.index(after: colon)...]))
    }

    static func trimmed(_ text: String) -> String {
        var s = Substring(text)
        while let c = s.first, c == " " || c == "\n" || c == "\t" || c == "\r" { s.removeFirst() }
        while let c = s.last, c == " " || c == "\n" || c == "\t" || c == "\r" { s.removeLast() }
        return String(s)
    }

    static let xmlNamespace = "http://www.w3.org/XML/1998/namespace"
    static let xmlnsNamespace = "http://www.w3.org/2000/xmlns/"
}
