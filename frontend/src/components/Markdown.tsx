// Model output rendered as markdown. Raw HTML in it is never rendered (react-markdown drops it
// with skipHtml and has no rehype-raw here), and link/image URLs pass its default URL filter
// (no javascript: or data: links).
import ReactMarkdown from "react-markdown";
import remarkGfm from "remark-gfm";

export function Markdown({ text }: { text: string }) {
  return (
    <div className="markdown">
      <ReactMarkdown
        remarkPlugins={[remarkGfm]}
        skipHtml
        components={{
          a: ({ node: _node, ...props }) => <a {...props} target="_blank" rel="noopener noreferrer nofollow" />,
          img: ({ node: _node, alt }) => <span>{alt}</span>, // no remote images from model output
        }}
      >
        {text}
      </ReactMarkdown>
    </div>
  );
}
