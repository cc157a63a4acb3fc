package jsonstore

import (
	"fmt"
	"strings"
)

// attachmentName is the file name a saved attachment gets: its own name
// made safe, or, when it has none (or nothing usable is left of it),
// "attachment-N" with an extension from its media type, so that the file
// opens in the right program. The table is fixed rather than
// mime.ExtensionsByType, which reads the machine's mime.types and would
// name the same attachment differently on different machines.
func attachmentName(index int, filename, contentType string) string {
	name := SafeName(filename)
	if filename != "" && name != "_" {
		return name
	}
	return fmt.Sprintf("attachment-%d", index+1) + extensionFor(contentType)
}

// extensionFor returns the usual extension of a bare media type, or "".
func extensionFor(contentType string) string {
	ct := strings.ToLower(strings.TrimSpace(contentType))
	if ext, ok := mediaExtensions[ct]; ok {
		return ext
	}
	switch {
	case strings.HasSuffix(ct, "+xml"):
		return ".xml"
	case strings.HasSuffix(ct, "+json"):
		return ".json"
	case strings.HasSuffix(ct, "+zip"):
		return ".zip"
	case strings.HasPrefix(ct, "text/"):
		return ".txt"
	}
	return ""
}

var mediaExtensions = map[string]string{
	"message/rfc822":                          ".eml",
	"message/global":                          ".eml",
	"message/partial":                         ".eml",
	"message/delivery-status":                 ".txt",
	"message/disposition-notification":        ".txt",
	"message/global-delivery-status":          ".txt",
	"text/rfc822-headers":                     ".txt",
	"text/plain":                              ".txt",
	"text/html":                               ".html",
	"text/calendar":                           ".ics",
	"application/ics":                         ".ics",
	"text/vcard":                              ".vcf",
	"text/x-vcard":                            ".vcf",
	"text/directory":                          ".vcf",
	"text/csv":                                ".csv",
	"text/markdown":                           ".md",
	"text/xml":                                ".xml",
	"text/css":                                ".css",
	"text/enriched":                           ".txt",
	"text/richtext":                           ".rtf",
	"image/png":                               ".png",
	"image/jpeg":                              ".jpg",
	"image/jpg":                               ".jpg",
	"image/pjpeg":                             ".jpg",
	"image/gif":                               ".gif",
	"image/webp":                              ".webp",
	"image/bmp":                               ".bmp",
	"image/tiff":                              ".tif",
	"image/svg+xml":                           ".svg",
	"image/heic":                              ".heic",
	"image/avif":                              ".avif",
	"image/x-icon":                            ".ico",
	"audio/mpeg":                              ".mp3",
	"audio/ogg":                               ".ogg",
	"audio/wav":                               ".wav",
	"audio/x-wav":                             ".wav",
	"video/mp4":                               ".mp4",
	"video/quicktime":                         ".mov",
	"application/pdf":                         ".pdf",
	"application/zip":                         ".zip",
	"application/x-zip-compressed":            ".zip",
	"application/gzip":                        ".gz",
	"application/x-gzip":                      ".gz",
	"application/x-tar":                       ".tar",
	"application/x-7z-compressed":             ".7z",
	"application/vnd.rar":                     ".rar",
	"application/x-rar-compressed":            ".rar",
	"application/json":                        ".json",
	"application/xml":                         ".xml",
	"application/rtf":                         ".rtf",
	"application/msword":                      ".doc",
	"application/vnd.ms-excel":                ".xls",
	"application/vnd.ms-powerpoint":           ".ppt",
	"application/vnd.ms-outlook":              ".msg",
	"application/vnd.ms-tnef":                 ".dat", // winmail.dat
	"application/ms-tnef":                     ".dat",
	"application/pgp-signature":               ".asc",
	"application/pgp-encrypted":               ".asc",
	"application/pgp-keys":                    ".asc",
	"application/pkcs7-signature":             ".p7s",
	"application/x-pkcs7-signature":           ".p7s",
	"application/pkcs7-mime":                  ".p7m",
	"application/x-pkcs7-mime":                ".p7m",
	"application/octet-stream":                ".bin",
	"application/vnd.oasis.opendocument.text": ".odt",
	"application/vnd.oasis.opendocument.spreadsheet":                            ".ods",
	"application/vnd.openxmlformats-officedocument.wordprocessingml.document":   ".docx",
	"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet":         ".xlsx",
	"application/vnd.openxmlformats-officedocument.presentationml.presentation": ".pptx",
}
