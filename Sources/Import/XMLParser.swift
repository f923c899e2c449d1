/// The one-pass, non-recursive parser behind `XMLDocument.parse`. Open elements live on an explicit stack, so the
/// depth limit, not the thread's stack, bounds nesting.
struct XMLParser {
    let bytes: [UInt8]
    let limits: XMLLimits
    var pos = 0
    var elementCount = 0
    var attributeCount = 0

    // Line and column of `cursorOffset`, advanced lazily (offsets asked for mostly grow, so this stays linear).
    var cursorOffset = 0
    var cursorLine = 1
    var cursorColumn = 1

    init(bytes: [UInt8], limits: XMLLimits) {
        self.bytes = bytes
        self.limits = limits
    }

    /// An element being read: its start, its namespace scope and the character data so far.
    struct Open {
        var element: XMLElement
        var scope: [String: String]
        var text: [UInt8] = []
    }

    // MARK: - Document

    mutating func parseDocument() throws(XMLError) -> XMLElement {
        if bytes.count > limits.bytes {
            throw XMLError(kind: .tooLarge, line: 1, column: 1,
                           message: "the document is \(bytes.count) bytes; at most \(limits.bytes) are read")
        }
        try checkEncoding()
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) {
            pos = 3
            cursorOffset = 3
        }
        if matches("<?xml"), pos + 5 < bytes.count, isWhitespace(bytes[pos + 5]) || bytes[pos + 5] == UInt8(ascii: "?") {
            try parseDeclaration()
        }
        // Prolog: comments, processing instructions, whitespace.
        while true {
            skipWhitespace()
            guard pos < bytes.count else {
                throw error(.noRootElement, at: pos, "the document has no root element")
            }
            if try skipMarkupOutsideElements() { continue }
            if bytes[pos] == UInt8(ascii: "<") { break }
            throw error(.syntax, at: pos, "text before the root element")
        }
        let root = try parseElements()
        // Misc after the root: comments, processing instructions, whitespace only.
        while true {
            skipWhitespace()
            guard pos < bytes.count else { break }
            if try skipMarkupOutsideElements() { continue }
            throw error(.contentAfterRoot, at: pos, "content after the root element </\(root.name)>")
        }
        return root
    }

    /// Comments and processing instructions are skipped; DOCTYPE and ENTITY declarations are refused.
    /// Returns false when `pos` is at something else.
    mutating func skipMarkupOutsideElements() throws(XMLError) -> Bool {
        if matches("<!--") { try skipComment(); return true }
        if matches("<?") { try skipProcessingInstruction(); return true }
        try refuseDeclarations()
        return false
    }

    mutating func refuseDeclarations() throws(XMLError) {
        if matchesIgnoringCase("<!DOCTYPE") {
            throw error(.doctype, at: pos, "document type declarations (<!DOCTYPE) are refused: corral reads no DTD, "
                + "so no external or expanding entities; remove the DOCTYPE line")
        }
        if matchesIgnoringCase("<!ENTITY") {
            throw error(.entityDeclaration, at: pos, "entity declarations (<!ENTITY) are refused: corral expands no "
                + "entities but the five predefined ones")
        }
    }

    /// `<?xml version="1.0" encoding="UTF-8"?>`: only UTF-8 (or its ASCII subset) is read.
    mutating func parseDeclaration() throws(XMLError) {
        let start = pos
        guard let end = find("?>", from: pos) else {
            throw error(.unexpectedEnd, at: start, "the XML declaration is not closed with '?>'")
        }
        let body = Array(bytes[(pos + 5)..<end])
        let key = Array("encoding".utf8)
        if let at = (0..<max(0, body.count - key.count + 1)).first(where: { Array(body[$0..<($0 + key.count)]) == key }) {
            var rest = body[(at + key.count)...].drop { isWhitespace($0) || $0 == UInt8(ascii: "=") }
            if let quote = rest.first, quote == UInt8(ascii: "\"") || quote == UInt8(ascii: "'") {
                rest = rest.dropFirst()
                let value = String(decoding: rest.prefix { $0 != quote }, as: UTF8.self)
                let upper = value.uppercased()
                if upper != "UTF-8" && upper != "UTF8" && upper != "US-ASCII" && upper != "ASCII" {
                    throw error(.syntax, at: start, "the document says encoding '\(value.prefix(40))'; "
                        + "only UTF-8 documents are read (convert it with iconv)")
                }
            }
        }
        pos = end + 2
    }

    // MARK: - Elements

    /// Reads the root element and everything in it.
    mutating func parseElements() throws(XMLError) -> XMLElement {
        var stack: [Open] = []
        let (first, selfClosing) = try parseStartTag(scope: ["xml": XMLName.xmlNamespace])
        if selfClosing { return first.element }
        stack.append(first)

        // `stack[last]` is only ever touched in place: a copy of the open element held across an append would make
        // every append copy its children (quadratic in a wide document).
        while !stack.isEmpty {
            let last = stack.count - 1
            guard pos < bytes.count else {
                throw error(.unexpectedEnd, at: pos, "the document ends inside <\(stack[last].element.name)> "
                    + "(opened at line \(stack[last].element.line))")
            }
            if bytes[pos] != UInt8(ascii: "<") {
                try readCharacterData(into: &stack[last].text)
                continue
            }
            if matches("</") {
                let closeAt = pos
                pos += 2
                let name = try parseName(what: "element")
                skipWhitespace()
                try expect(">", "'>' to end the tag </\(name)>")
                guard name == stack[last].element.name else {
                    let open = stack[last].element
                    throw error(.mismatchedTag, at: closeAt, "</\(name)> closes <\(open.name)> "
                        + "(opened at line \(open.line), column \(open.column))")
                }
                var done = stack.removeLast()
                done.element.text = String(decoding: done.text, as: UTF8.self)
                if stack.isEmpty { return done.element }
                stack[stack.count - 1].element.children.append(done.element)
            } else if matches("<!--") {
                try skipComment()
            } else if matches("<![CDATA[") {
                try readCDATA(into: &stack[last].text)
            } else if matches("<?") {
                try skipProcessingInstruction()
            } else if matches("<!") {
                try refuseDeclarations()
                throw error(.syntax, at: pos, "unexpected '<!' (only comments <!-- --> and <![CDATA[ ]]> are read)")
            } else {
                if stack.count >= limits.depth {
                    throw error(.tooDeep, at: pos, "elements nested more than \(limits.depth) deep")
                }
                let (child, selfClosing) = try parseStartTag(scope: stack[last].scope)
                if selfClosing {
                    stack[last].element.children.append(child.element)
                } else {
                    stack.append(child)
                }
            }
        }
        // Unreachable: the loop returns when the root closes.
        throw error(.unexpectedEnd, at: pos, "the document ends inside an element")
    }

    /// `<name attr="value" …>` or `…/>`, with `pos` at `<`.
    mutating func parseStartTag(scope parentScope: [String: String]) throws(XMLError) -> (Open, Bool) {
        let start = pos
        let (line, column) = position(start)
        elementCount += 1
        if elementCount > limits.elements {
            throw error(.tooManyElements, at: start, "more than \(limits.elements) elements")
        }
        pos += 1
        let name = try parseName(what: "element")
        var attributes: [XMLAttribute] = []
        var selfClosing = false
        while true {
            let spaced = skipWhitespace()
            guard pos < bytes.count else {
                throw error(.unexpectedEnd, at: start, "the tag <\(name)> is not closed")
            }
            if matches("/>") {
                pos += 2
                selfClosing = true
                break
            }
            if bytes[pos] == UInt8(ascii: ">") {
                pos += 1
                break
            }
            guard spaced else {
                throw error(.syntax, at: pos, "expected whitespace, '>' or '/>' in the tag <\(name)>")
            }
            let attributeStart = pos
            let attributeName = try parseName(what: "attribute")
            skipWhitespace()
            try expect("=", "'=' after the attribute \(attributeName)")
            skipWhitespace()
            let value = try parseAttributeValue(name: attributeName)
            if attributes.contains(where: { $0.name == attributeName }) {
                throw error(.duplicateAttribute, at: attributeStart, "the attribute \(attributeName) is given twice "
                    + "in <\(name)>")
            }
            if attributes.count >= limits.attributesPerElement {
                throw error(.tooManyAttributes, at: attributeStart,
                            "more than \(limits.attributesPerElement) attributes in <\(name)>")
            }
            attributeCount += 1
            if attributeCount > limits.attributes {
                throw error(.tooManyAttributes, at: attributeStart,
                            "more than \(limits.attributes) attributes in the document")
            }
            let (aLine, aColumn) = position(attributeStart)
            attributes.append(XMLAttribute(name: attributeName, value: value, line: aLine, column: aColumn))
        }

        // Namespaces declared here apply to the element itself and its attributes.
        var scope = parentScope
        for attribute in attributes {
            if attribute.name == "xmlns" {
                scope[""] = attribute.value
            } else if attribute.prefix == "xmlns" {
                guard !attribute.value.isEmpty else {
                    throw error(.syntax, at: start, "\(attribute.name) must not be empty (line \(attribute.line))")
                }
                scope[attribute.localName] = attribute.value
            }
        }
        var element = XMLElement(name: name, line: line, column: column)
        if let prefix = element.prefix {
            guard let uri = scope[prefix] else {
                throw error(.unboundPrefix, at: start, "the prefix '\(prefix)' of <\(name)> is not declared "
                    + "(no xmlns:\(prefix) in scope)")
            }
            element.namespace = uri
        } else if let uri = scope[""], !uri.isEmpty {
            element.namespace = uri
        }
        for index in attributes.indices {
            let attribute = attributes[index]
            if attribute.name == "xmlns" || attribute.prefix == "xmlns" {
                attributes[index].namespace = XMLName.xmlnsNamespace
            } else if let prefix = attribute.prefix {
                guard let uri = scope[prefix] else {
                    throw XMLError(kind: .unboundPrefix, line: attribute.line, column: attribute.column,
                                   message: "the prefix '\(prefix)' of the attribute \(attribute.name) is not declared "
                                       + "(no xmlns:\(prefix) in scope)")
                }
                attributes[index].namespace = uri
            }
        }
        element.attributes = attributes
        return (Open(element: element, scope: scope), selfClosing)
    }

    /// A quoted value with `pos` at the quote; references replaced, whitespace characters made spaces.
    mutating func parseAttributeValue(name: String) throws(XMLError) -> String {
        guard pos < bytes.count, bytes[pos] == UInt8(ascii: "\"") || bytes[pos] == UInt8(ascii: "'") else {
            throw error(.syntax, at: pos, "the value of \(name) must be in quotes")
        }
        let quote = bytes[pos]
        let start = pos
        pos += 1
        var value: [UInt8] = []
        while true {
            guard pos < bytes.count else {
                throw error(.unexpectedEnd, at: start, "the value of \(name) is not closed")
            }
            let byte = bytes[pos]
            if byte == quote {
                pos += 1
                break
            }
            switch byte {
            case UInt8(ascii: "<"):
                throw error(.syntax, at: pos, "'<' in the value of \(name) (write &lt;)")
            case UInt8(ascii: "&"):
                try readReference(into: &value)
            case 0x0D:
                // CR LF and a lone CR are one line end, normalised to one space.
                value.append(0x20)
                pos += 1
                if pos < bytes.count, bytes[pos] == 0x0A { pos += 1 }
            case 0x09, 0x0A:
                value.append(0x20)
                pos += 1
            default:
                value.append(byte)
                pos += 1
            }
            if value.count > limits.attributeValueLength {
                throw error(.valueTooLong, at: start, "the value of \(name) is longer than "
                    + "\(limits.attributeValueLength) bytes")
            }
        }
        return String(decoding: value, as: UTF8.self)
    }

    /// Character data up to the next `<`, references replaced, line ends normalised.
    mutating func readCharacterData(into text: inout [UInt8]) throws(XMLError) {
        while pos < bytes.count {
            let byte = bytes[pos]
            switch byte {
            case UInt8(ascii: "<"):
                return
            case UInt8(ascii: "&"):
                try readReference(into: &text)
            case 0x0D:
                text.append(0x0A)
                pos += 1
                if pos < bytes.count, bytes[pos] == 0x0A { pos += 1 }
            default:
                text.append(byte)
                pos += 1
            }
        }
    }

    mutating func readCDATA(into text: inout [UInt8]) throws(XMLError) {
        let start = pos
        pos += 9
        guard let end = find("]]>", from: pos) else {
            throw error(.unexpectedEnd, at: start, "the CDATA section is not closed with ']]>'")
        }
        var index = pos
        while index < end {
            if bytes[index] == 0x0D {
                text.append(0x0A)
                if index + 1 < end, bytes[index + 1] == 0x0A { index += 1 }
            } else {
                text.append(bytes[index])
            }
            index += 1
        }
        pos = end + 3
    }

    // MARK: - References

    /// `&lt;`, `&#65;`, `&#x41;` with `pos` at `&`.
    mutating func readReference(into out: inout [UInt8]) throws(XMLError) {
        let start = pos
        var end = pos + 1
        while end < bytes.count, end - start <= 40, bytes[end] != UInt8(ascii: ";"),
              bytes[end] != UInt8(ascii: "<"), bytes[end] != UInt8(ascii: "&"), !isWhitespace(bytes[end]) {
            end += 1
        }
        guard end < bytes.count, bytes[end] == UInt8(ascii: ";"), end > start + 1 else {
            throw error(.syntax, at: start, "'&' must start a reference like &amp; or &#38; (write &amp; for '&')")
        }
        let body = Array(bytes[(start + 1)..<end])
        let name = String(decoding: body, as: UTF8.self)
        pos = end + 1
        switch name {
        case "lt": out.append(UInt8(ascii: "<"))
        case "gt": out.append(UInt8(ascii: ">"))
        case "amp": out.append(UInt8(ascii: "&"))
        case "apos": out.append(UInt8(ascii: "'"))
        case "quot": out.append(UInt8(ascii: "\""))
        default:
            guard body.first == UInt8(ascii: "#") else {
                throw error(.undefinedEntity, at: start, "&\(name); is not defined: only &lt; &gt; &amp; &apos; "
                    + "&quot; and numeric references (&#38;) are read, documents with a DTD are refused")
            }
            let hex = body.count > 1 && body[1] == UInt8(ascii: "x")
            let digits = body.dropFirst(hex ? 2 : 1)
            guard !digits.isEmpty, digits.count <= 8,
                  let value = UInt32(String(decoding: digits, as: UTF8.self), radix: hex ? 16 : 10),
                  Self.isXMLChar(value), let scalar = Unicode.Scalar(value)
            else {
                throw error(.badCharacterReference, at: start, "&\(name); is not a character XML allows")
            }
            out.append(contentsOf: Array(String(Character(scalar)).utf8))
        }
    }

    /// XML 1.0's Char production.
    static func isXMLChar(_ value: UInt32) -> Bool {
        switch value {
        case 0x9, 0xA, 0xD: return true
        case 0x20...0xD7FF, 0xE000...0xFFFD, 0x10000...0x10FFFF: return true
        default: return false
        }
    }

    // MARK: - Comments and processing instructions

    mutating func skipComment() throws(XMLError) {
        let start = pos
        guard let end = find("-->", from: pos + 4) else {
            throw error(.unexpectedEnd, at: start, "the comment is not closed with '-->'")
        }
        pos = end + 3
    }

    mutating func skipProcessingInstruction() throws(XMLError) {
        let start = pos
        pos += 2
        let target = try parseName(what: "processing instruction")
        if target.lowercased() == "xml" {
            throw error(.syntax, at: start, "an XML declaration (<?xml …?>) is only allowed at the very start")
        }
        guard let end = find("?>", from: pos) else {
            throw error(.unexpectedEnd, at: start, "the processing instruction <?\(target) is not closed with '?>'")
        }
        pos = end + 2
    }

    // MARK: - Lexing

    /// A qualified name (`a`, `p:a`) with `pos` at its first byte.
    mutating func parseName(what: String) throws(XMLError) -> String {
        let start = pos
        guard pos < bytes.count, Self.isNameStart(bytes[pos]) else {
            if pos >= bytes.count { throw error(.unexpectedEnd, at: pos, "the document ends where a name was expected") }
            throw error(.syntax, at: pos, "expected \(what == "element" ? "an element" : "a \(what)") name")
        }
        pos += 1
        while pos < bytes.count, Self.isNameByte(bytes[pos]) {
            pos += 1
            if pos - start > limits.nameLength {
                throw error(.nameTooLong, at: start, "a name longer than \(limits.nameLength) bytes")
            }
        }
        let name = String(decoding: bytes[start..<pos], as: UTF8.self)
        let colons = name.utf8.filter { $0 == UInt8(ascii: ":") }.count
        if colons > 1 || name.hasPrefix(":") || name.hasSuffix(":") {
            throw error(.syntax, at: start, "'\(name)' is not a valid name (at most one ':', between prefix and name)")
        }
        return name
    }

    static func isNameStart(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
            || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ":") || byte >= 0x80
    }

    static func isNameByte(_ byte: UInt8) -> Bool {
        isNameStart(byte) || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
            || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".")
    }

    func isWhitespace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D
    }

    @discardableResult
    mutating func skipWhitespace() -> Bool {
        let start = pos
        while pos < bytes.count, isWhitespace(bytes[pos]) { pos += 1 }
        return pos > start
    }

    mutating func expect(_ literal: String, _ what: String) throws(XMLError) {
        guard matches(literal) else {
            if pos >= bytes.count { throw error(.unexpectedEnd, at: pos, "the document ends where \(what) was expected") }
            throw error(.syntax, at: pos, "expected \(what)")
        }
        pos += literal.utf8.count
    }

    func matches(_ literal: String) -> Bool {
        var index = pos
        for byte in literal.utf8 {
            guard index < bytes.count, bytes[index] == byte else { return false }
            index += 1
        }
        return true
    }

    func matchesIgnoringCase(_ literal: String) -> Bool {
        var index = pos
        for byte in literal.utf8 {
            guard index < bytes.count else { return false }
            let lower = bytes[index] >= 0x41 && bytes[index] <= 0x5A ? bytes[index] + 0x20 : bytes[index]
            let wanted = byte >= 0x41 && byte <= 0x5A ? byte + 0x20 : byte
            guard lower == wanted else { return false }
            index += 1
        }
        return true
    }

    /// Offset of the next `literal` at or after `from`.
    func find(_ literal: String, from: Int) -> Int? {
        let needle = Array(literal.utf8)
        guard let first = needle.first, from >= 0 else { return nil }
        var index = from
        while index + needle.count <= bytes.count {
            if bytes[index] == first {
                var ok = true
                for k in 1..<needle.count where bytes[index + k] != needle[k] {
                    ok = false
                    break
                }
                if ok { return index }
            }
            index += 1
        }
        return nil
    }

    // MARK: - Encoding

    /// Valid UTF-8 (no overlong forms, surrogates or values past U+10FFFF) of characters XML allows.
    mutating func checkEncoding() throws(XMLError) {
        var index = 0
        while index < bytes.count {
            let lead = bytes[index]
            if lead < 0x80 {
                if lead < 0x20 && lead != 0x09 && lead != 0x0A && lead != 0x0D {
                    throw error(.invalidCharacter, at: index, "control character 0x\(String(lead, radix: 16)) "
                        + "is not allowed in XML")
                }
                index += 1
                continue
            }
            let length: Int
            var value: UInt32
            switch lead {
            case 0xC2...0xDF: length = 2; value = UInt32(lead & 0x1F)
            case 0xE0...0xEF: length = 3; value = UInt32(lead & 0x0F)
            case 0xF0...0xF4: length = 4; value = UInt32(lead & 0x07)
            default:
                throw error(.invalidUTF8, at: index, "byte 0x\(String(lead, radix: 16)) is not UTF-8")
            }
            guard index + length <= bytes.count else {
                throw error(.invalidUTF8, at: index, "the document ends inside a UTF-8 sequence")
            }
            for k in 1..<length {
                let next = bytes[index + k]
                guard next & 0xC0 == 0x80 else {
                    throw error(.invalidUTF8, at: index, "byte 0x\(String(lead, radix: 16)) starts a UTF-8 sequence "
                        + "that is cut short")
                }
                value = value << 6 | UInt32(next & 0x3F)
            }
            let minimum: UInt32 = length == 2 ? 0x80 : length == 3 ? 0x800 : 0x10000
            guard value >= minimum, value <= 0x10FFFF, !(0xD800...0xDFFF).contains(value) else {
                throw error(.invalidUTF8, at: index, "an invalid UTF-8 sequence (overlong, surrogate or too large)")
            }
            if value == 0xFFFE || value == 0xFFFF {
                throw error(.invalidCharacter, at: index, "U+\(String(value, radix: 16, uppercase: true)) "
                    + "is not allowed in XML")
            }
            index += length
        }
    }

    // MARK: - Positions and errors

    /// 1-based line and column (in characters) of a byte offset.
    mutating func position(_ offset: Int) -> (line: Int, column: Int) {
        if offset < cursorOffset {
            cursorOffset = 0
            cursorLine = 1
            cursorColumn = 1
        }
        let target = min(offset, bytes.count)
        while cursorOffset < target {
            let byte = bytes[cursorOffset]
            if byte == 0x0A {
                cursorLine += 1
                cursorColumn = 1
            } else if byte == 0x0D {
                // A lone CR ends a line; in CR LF the LF does.
                if cursorOffset + 1 >= bytes.count || bytes[cursorOffset + 1] != 0x0A {
                    cursorLine += 1
                    cursorColumn = 1
                }
            } else if byte & 0xC0 != 0x80 && !(cursorOffset < 3 && bytes.starts(with: [0xEF, 0xBB, 0xBF])) {
                cursorColumn += 1
            }
            cursorOffset += 1
        }
        return (cursorLine, cursorColumn)
    }

    mutating func error(_ kind: XMLError.Kind, at offset: Int, _ message: String) -> XMLError {
        let (line, column) = position(offset)
        return XMLError(kind: kind, line: line, column: column, message: message)
    }
}
