# Per-round median ratios of the plain-TCG runs in this directory
# (KIND-ROUND.txt): python3 ratios.py
import glob, os, re, statistics as st, collections
d=collections.defaultdict(list)  # (kind,round,case,size) -> setup per-rep list
for f in glob.glob(os.path.join(os.path.dirname(os.path.abspath(__file__)), '*.txt')):
    kind,rnd=f.split('/')[-1][:-4].rsplit('-',1)
    for l in open(f):
        m=re.match(r'T (\w+) (\d+) plain whole (\d+) ([\d.]+) \S+ \d+ .*migrate_vma_setup=([\d.]+)/(\d+)',l)
        if m:
            c,s,rep,tot,setup,n=m.groups()
            d[(kind,int(rnd),c,int(s))].append((float(setup),float(tot)))
rounds=sorted({k[1] for k in d})
for c in ('thp','present'):
  for s in (64,512):
    for what,idx in (('setup',0),('whole',1)):
      line=[]
      for other in ('prev','patched'):
        rs=[]
        for r in rounds:
          b=d.get(('base',r,c,s)); p=d.get((other,r,c,s))
          if b and p: rs.append(st.median(x[idx] for x in p)/st.median(x[idx] for x in b))
        if rs: line.append('%s/base: %s (median %.2f)'%(other,' '.join('%.2f'%x for x in rs),st.median(rs)))
      print(c,s,what,'; '.join(line))
